//! Demo data: a SampleNotePad-like catalog and an admin user.
use super::catalog::{create_item, NewItem};
use super::users::{add_user, generate_password, user_exists, NewUser};
use super::Core;
use crate::domain::{Actor, Interface, ItemKind, ItemOptions, Role};
use crate::error::{Error, Result};

pub struct DemoOutcome {
    pub items_created: Vec<String>,
    /// The admin's password, when this call made the admin user.
    pub admin_password: Option<String>,
}

pub async fn seed(core: &Core) -> Result<DemoOutcome> {
    let actor = Actor::system(Interface::Cli);
    let o = |json: serde_json::Value| -> ItemOptions {
        serde_json::from_value(json).expect("demo options")
    };
    let catalog: Vec<(&str, &str, ItemKind, i64, ItemOptions)> = vec![
        (
            "SNP-SINGLE",
            "SampleNotePad single user",
            ItemKind::License,
            1001,
            o(serde_json::json!({"license_quantity": 0, "feature_map": 1})),
        ),
        (
            "SNP-FLOAT-5",
            "SampleNotePad 5 floating users",
            ItemKind::License,
            1002,
            o(
                serde_json::json!({"license_quantity": 5, "feature_map": 1, "container_types": ["act", "dongle"]}),
            ),
        ),
        (
            "SNP-TRIAL-30",
            "SampleNotePad 30-day trial",
            ItemKind::License,
            1003,
            o(
                serde_json::json!({"usage_period_days": 30, "feature_map": 1, "container_types": ["act"], "trial": true}),
            ),
        ),
        (
            "SNP-SUB-1Y",
            "SampleNotePad subscription, one year",
            ItemKind::License,
            1004,
            o(
                serde_json::json!({"usage_period_days": 365, "maintenance_period_days": 365, "feature_map": 3}),
            ),
        ),
        (
            "SNP-UPD-PRO",
            "SampleNotePad Pro upgrade",
            ItemKind::Update,
            1001,
            o(serde_json::json!({"update": {"add_features": 2}})),
        ),
        (
            "LOCK",
            "Lock item for blacklisted containers",
            ItemKind::Lock,
            9999,
            ItemOptions::default(),
        ),
    ];
    let mut created = vec![];
    for (id, name, kind, pc, options) in catalog {
        let req = NewItem {
            item_id: id.into(),
            name: name.into(),
            kind,
            firm_code: None,
            product_code: pc,
            options,
        };
        match create_item(core, &actor, req).await {
            Ok(_) => created.push(id.to_string()),
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let admin_password = if user_exists(core, "admin").await? {
        None
    } else {
        let password = generate_password();
        add_user(
            core,
            &actor,
            NewUser {
                username: "admin".into(),
                password: password.clone(),
                role: Role::Admin,
            },
        )
        .await?;
        Some(password)
    };
    Ok(DemoOutcome {
        items_created: created,
        admin_password,
    })
}
