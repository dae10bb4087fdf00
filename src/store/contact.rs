//! The query every container contact starts with: the firm its context names, whether the
//! serial is on that firm's blacklist, the container with its mirror for the firm, and the
//! issued update that leads from the mirror to the context's digest (what a receipt
//! confirms), in one round trip.
use diesel::prelude::*;

use super::blacklist;
use super::containers::ContainerRow;
use super::mirrors::{Mirror, MirrorRow, MIRROR_SELECT};
use super::schema::{self, container_firms, containers, firms, settings, updates};
use super::updates::{UpdateRow, UPDATE_SELECT};
use super::{settings as stored_settings, Conn};
use crate::domain::{Settings, UpdateState};
use crate::error::{Error, Result};
use crate::on_backend;

/// What a contact needs to know of the firm its context names.
pub struct FirmFacts {
    pub id: i64,
    /// The id of the firm's current signing key.
    pub key_id: String,
    pub settings: Settings,
    /// Whether the context's serial is on the firm's blacklist.
    pub blacklisted: bool,
}

/// The registered container of the serial, and, once it has made contact for the firm, its
/// mirror with the issued update that leads from it to the context's digest.
pub struct Found {
    pub container: ContainerRow,
    pub mirror: Option<(Mirror, Option<UpdateRow>)>,
}

pub fn firm_and_container(
    c: &mut Conn,
    firm_code: i64,
    serial: &str,
    digest: &str,
) -> Result<(FirmFacts, Option<Found>)> {
    let listed = schema::blacklist::table.filter(blacklist::open(firms::id, serial));
    type Row = (
        i64,
        String,
        Option<String>,
        bool,
        Option<ContainerRow>,
        Option<MirrorRow>,
        Option<UpdateRow>,
    );
    let found: Option<Row> = on_backend!(c, x => firms::table
        .left_join(settings::table.on(settings::firm_id.eq(firms::id)))
        .left_join(containers::table.on(containers::serial.eq(serial.to_string())))
        .left_join(
            container_firms::table.on(container_firms::container_id
                .eq(containers::id)
                .and(container_firms::firm_id.eq(firms::id))),
        )
        .left_join(
            // On the mirror's columns, so that the index finds the rows by all three
            // (PostgreSQL otherwise reads every update of the container).
            updates::table.on(updates::container_id
                .eq(container_firms::container_id)
                .and(updates::firm_id.eq(container_firms::firm_id))
                .and(updates::counter_from.eq(container_firms::counter))
                .and(updates::digest_after.eq(digest.to_string()))
                .and(updates::state.eq(UpdateState::Issued.as_str()))),
        )
        .filter(firms::firm_code.eq(firm_code))
        .select((
            firms::id,
            firms::key_id,
            settings::body.nullable(),
            diesel::dsl::exists(listed),
            containers::all_columns.nullable(),
            MIRROR_SELECT.nullable(),
            UPDATE_SELECT.nullable(),
        ))
        .order(updates::id.desc())
        .first(x)
        .optional())?;
    let (id, key_id, body, blacklisted, container, mirror, issued) =
        found.ok_or_else(|| Error::not_found("firm", firm_code))?;
    let firm = FirmFacts {
        id,
        key_id,
        settings: stored_settings::parse(body)?,
        blacklisted,
    };
    let found = container
        .map(|container| {
            let mirror = mirror
                .map(|m| Ok::<_, Error>((Mirror::from_row(m)?, issued)))
                .transpose()?;
            Ok::<_, Error>(Found { container, mirror })
        })
        .transpose()?;
    Ok((firm, found))
}
