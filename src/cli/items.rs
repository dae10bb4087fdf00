//! `licentia item …`: the catalog.
use clap::Subcommand;

use licentia::domain::{Actor, ItemKind, ItemOptions};
use licentia::error::Error;
use licentia::service::{catalog, Core};

#[derive(Subcommand)]
pub enum ItemCmd {
    List,
    Show {
        item_id: String,
    },
    Add {
        #[arg(long)]
        item_id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        product_code: i64,
        #[arg(long, default_value = "license")]
        kind: String,
        #[arg(long)]
        firm_code: Option<i64>,
        /// Product item options as JSON, e.g. '{"license_quantity": 5, "feature_map": 3}'.
        #[arg(long, default_value = "{}")]
        options: String,
    },
}

pub async fn run(core: &Core, actor: &Actor, cmd: ItemCmd) -> anyhow::Result<()> {
    match cmd {
        ItemCmd::List => {
            for i in catalog::list_items(core, actor).await? {
                println!(
                    "{}\t{}\t{}\t{}/{}",
                    i.item_id,
                    i.kind.as_str(),
                    i.name,
                    i.firm_code,
                    i.product_code
                );
            }
        }
        ItemCmd::Show { item_id } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&catalog::get_item(core, actor, item_id).await?)?
            );
        }
        ItemCmd::Add {
            item_id,
            name,
            product_code,
            kind,
            firm_code,
            options,
        } => {
            let options: ItemOptions =
                serde_json::from_str(&options).map_err(|e| Error::invalid("options", e))?;
            let kind = ItemKind::parse(&kind)?;
            let item = catalog::create_item(
                core,
                actor,
                catalog::NewItem {
                    item_id,
                    name,
                    kind,
                    firm_code,
                    product_code,
                    options,
                },
            )
            .await?;
            println!("item {} created", item.item_id);
        }
    }
    Ok(())
}
