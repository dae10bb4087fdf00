//! Items: what the vendor sells, by the item id (SKU) the ERP uses.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{firms, items};
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

/// The ids of the firm's items with product code `product_code`.
pub fn with_product_code(c: &mut Conn, firm_id: i64, product_code: i64) -> Result<Vec<String>> {
    Ok(items::table
        .filter(items::firm_id.eq(firm_id))
        .filter(items::product_code.eq(product_code))
        .select(items::item_id)
        .order(items::item_id.asc())
        .load(c)?)
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

/// An item as the catalog shows it: every column, in the table's order.
#[derive(Debug, Clone, Queryable)]
pub struct CatalogRow {
    pub id: i64,
    pub firm_id: i64,
    pub item_id: String,
    pub name: String,
    #[diesel(deserialize_as = String)]
    pub kind: ItemKind,
    pub product_code: i64,
    /// The product item options (JSON of `ItemOptions`).
    pub options: String,
    pub active: bool,
    pub version: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The item with id `item_id`, with its firm's code.
pub fn find(c: &mut Conn, item_id: &str) -> Result<Option<(CatalogRow, i64)>> {
    Ok(items::table
        .inner_join(firms::table)
        .filter(items::item_id.eq(item_id))
        .select((items::all_columns, firms::firm_code))
        .first(c)
        .optional()?)
}

/// Every item, with its firm's code, by item id.
pub fn all(c: &mut Conn) -> Result<Vec<(CatalogRow, i64)>> {
    Ok(items::table
        .inner_join(firms::table)
        .select((items::all_columns, firms::firm_code))
        .order(items::item_id.asc())
        .load(c)?)
}

pub struct NewItem<'a> {
    pub firm_id: i64,
    pub item_id: &'a str,
    pub name: &'a str,
    pub kind: ItemKind,
    pub product_code: i64,
    /// JSON of `ItemOptions`.
    pub options: &'a str,
}

/// Adds an active item at version 1; false if an item with that id exists (`ON CONFLICT DO
/// NOTHING`: a failed insert would abort the writer's transaction on PostgreSQL).
pub fn insert(c: &mut Conn, i: &NewItem, now: NaiveDateTime) -> Result<bool> {
    let added = on_backend!(c, x => diesel::insert_into(items::table)
            .values((
                items::firm_id.eq(i.firm_id),
                items::item_id.eq(i.item_id),
                items::name.eq(i.name),
                items::kind.eq(i.kind.as_str()),
                items::product_code.eq(i.product_code),
                items::options.eq(i.options),
                items::active.eq(true),
                items::version.eq(1),
                items::created_at.eq(now),
                items::updated_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(x))?;
    Ok(added == 1)
}

/// What `change` sets (all of it: the caller fills in what stays).
pub struct Change<'a> {
    pub name: &'a str,
    /// JSON of `ItemOptions`.
    pub options: &'a str,
    pub active: bool,
}

/// Changes item `item_id` if it is still at `version` (as the caller read it), raising the
/// version by one; false if it is not (changed meanwhile, or gone).
pub fn change(
    c: &mut Conn,
    item_id: &str,
    version: i32,
    set: &Change,
    now: NaiveDateTime,
) -> Result<bool> {
    let n = diesel::update(
        items::table
            .filter(items::item_id.eq(item_id))
            .filter(items::version.eq(version)),
    )
    .set((
        items::name.eq(set.name),
        items::options.eq(set.options),
        items::active.eq(set.active),
        items::version.eq(items::version + 1),
        items::updated_at.eq(now),
    ))
    .execute(c)?;
    Ok(n > 0)
}
