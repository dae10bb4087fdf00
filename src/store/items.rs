//! Items: what the vendor sells, by the item id (SKU) the ERP uses.
use diesel::prelude::*;

use super::schema::items;
use super::Conn;
use crate::domain::ItemKind;
use crate::error::{Error, Result};
use crate::on_backend;

/// An item as orders and replacements need it.
#[derive(Debug, Clone, Queryable)]
pub struct ItemRow {
    pub pk: i64,
    pub firm_id: i64,
    pub product_code: i64,
    /// The product item options (JSON of `ItemOptions`).
    pub options: String,
    #[diesel(deserialize_as = String)]
    pub kind: ItemKind,
    pub active: bool,
    pub name: String,
}

/// The item with id `item_id`; unknown is an error.
pub fn by_item_id(c: &mut Conn, item_id: &str) -> Result<ItemRow> {
    on_backend!(c, x => items::table
        .filter(items::item_id.eq(item_id))
        .select((
            items::id,
            items::firm_id,
            items::product_code,
            items::options,
            items::kind,
            items::active,
            items::name,
        ))
        .first(x)
        .optional())?
    .ok_or_else(|| Error::not_found("item", item_id))
}
