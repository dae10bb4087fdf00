//! The server's mirror of each container: per firm, the counter, digest and content the
//! container last confirmed (`container_firms`). Every update is made from it; a confirmed
//! update becomes it (`settle`).
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::licenses::{self, LicRow};
use super::schema::{container_firms, firms, items, licenses as lic, updates};
use super::updates::UpdateRow;
use super::{unique_or_retry, Conn, Reused};
use crate::domain::contact::settled;
use crate::domain::{LicenseState, UpdateState};
use crate::error::{Error, Result};
use crate::on_backend;
use crate::protocol::{Content, Entry};

/// What a container last confirmed of one firm.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub counter: i64,
    pub digest: String,
    /// Plain entries: what the container holds, without the firm signatures.
    pub content: Content<Entry>,
    pub confirmed_at: NaiveDateTime,
}

/// The mirror columns of `container_firms`, as read.
pub type MirrorRow = (i64, String, String, NaiveDateTime);

pub(super) type MirrorSelect = (
    container_firms::counter,
    container_firms::digest,
    container_firms::content,
    container_firms::confirmed_at,
);
pub(super) const MIRROR_SELECT: MirrorSelect = (
    container_firms::counter,
    container_firms::digest,
    container_firms::content,
    container_firms::confirmed_at,
);

impl Mirror {
    pub fn from_row((counter, digest, content, confirmed_at): MirrorRow) -> Result<Mirror> {
        Ok(Mirror {
            counter,
            digest,
            content: serde_json::from_str(&content)
                .map_err(|e| Error::internal(format!("mirror content: {e}")))?,
            confirmed_at,
        })
    }
}

/// The container's mirror for the firm; made (empty, counter 0) at its first contact.
pub fn load_or_create(
    c: &mut Conn,
    container_id: i64,
    firm_id: i64,
    now: NaiveDateTime,
) -> Result<Mirror> {
    let row: Option<MirrorRow> = on_backend!(c, x => container_firms::table
        .filter(container_firms::container_id.eq(container_id))
        .filter(container_firms::firm_id.eq(firm_id))
        .select(MIRROR_SELECT)
        .first(x)
        .optional())?;
    if let Some(row) = row {
        return Mirror::from_row(row);
    }
    let content = Content::<Entry>::default();
    let m = Mirror {
        counter: 0,
        digest: content.digest(),
        content,
        confirmed_at: now,
    };
    unique_or_retry(
        diesel::insert_into(container_firms::table)
            .values((
                container_firms::container_id.eq(container_id),
                container_firms::firm_id.eq(firm_id),
                container_firms::counter.eq(0),
                container_firms::digest.eq(&m.digest),
                container_firms::content.eq("{\"entries\":{},\"locked\":false}"),
                container_firms::confirmed_at.eq(m.confirmed_at),
            ))
            .execute(c),
    )?;
    Ok(m)
}

/// Makes `m` the container's mirror of the firm when it is still at counter `from` and
/// digest `digest_from` (a resynchronisation takes the state the container shows); false
/// when another writer moved it first.
pub fn adopt(
    c: &mut Conn,
    container_id: i64,
    firm_id: i64,
    (from, digest_from): (i64, &str),
    m: &Mirror,
) -> Result<bool> {
    let content = serde_json::to_string(&m.content).expect("content");
    let n = diesel::update(
        container_firms::table
            .filter(container_firms::container_id.eq(container_id))
            .filter(container_firms::firm_id.eq(firm_id))
            .filter(container_firms::counter.eq(from))
            .filter(container_firms::digest.eq(digest_from)),
    )
    .set((
        container_firms::counter.eq(m.counter),
        container_firms::digest.eq(&m.digest),
        container_firms::content.eq(content),
        container_firms::confirmed_at.eq(m.confirmed_at),
    ))
    .execute(c)?;
    Ok(n == 1)
}

/// A container's mirror of one firm, as support looks at it.
#[derive(Debug, Queryable)]
pub struct FirmMirror {
    pub firm_code: i64,
    pub counter: i64,
    pub digest: String,
    pub confirmed_at: NaiveDateTime,
    pub firm_id: i64,
}

/// The container's mirrors, one per firm.
pub fn of_container(c: &mut Conn, container_id: i64) -> Result<Vec<FirmMirror>> {
    Ok(container_firms::table
        .inner_join(firms::table.on(firms::id.eq(container_firms::firm_id)))
        .filter(container_firms::container_id.eq(container_id))
        .select((
            firms::firm_code,
            container_firms::counter,
            container_firms::digest,
            container_firms::confirmed_at,
            firms::id,
        ))
        .load(c)?)
}

/// Makes the result of `u` the container's confirmed state (its mirror, if still at the
/// counter `u` was issued from and the digest `from_digest` it was made from), confirms `u`, voids the other updates issued from that
/// state and moves the container's outstanding licenses as its confirmed content (`held`,
/// license ids) proves (`domain::contact::settled`). Answers each moved license with its new
/// state, by id; `None` when the mirror had moved on (another writer confirmed first). One
/// statement (one round trip) on PostgreSQL.
pub fn settle(
    c: &mut Conn,
    container_id: i64,
    serial: &str,
    firm_id: i64,
    (u, from_digest): (&UpdateRow, &str),
    held: &[i64],
    now: NaiveDateTime,
) -> Result<Option<Vec<(i64, LicenseState)>>> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
    use LicenseState as S;
    let lite = match c {
        Conn::Pg(pg) => {
            #[derive(QueryableByName)]
            struct Settled {
                #[diesel(sql_type = BigInt)]
                n: i64,
                #[diesel(sql_type = Nullable<BigInt>)]
                id: Option<i64>,
                #[diesel(sql_type = Nullable<Text>)]
                state: Option<String>,
            }
            // Every data-modifying WITH runs, referenced or not. In SET, a license's `state`
            // is the state before; RETURNING gives the state after. The license moves are
            // `domain::contact::settled` in SQL (a test runs both on every case).
            let q = diesel::sql_query(
                "WITH moved AS (UPDATE container_firms \
                   SET counter = $1, digest = $2, content = $3, confirmed_at = $4 \
                   WHERE container_id = $5 AND firm_id = $6 AND counter = $7 AND digest = $20 \
                   RETURNING counter), \
                 settled AS (UPDATE updates \
                   SET state = CASE WHEN id = $8 THEN $9 ELSE $10 END, \
                     confirmed_at = CASE WHEN id = $8 THEN $4 END \
                   WHERE container_id = $5 AND firm_id = $6 AND counter_from = $7 AND state = $11 \
                     AND EXISTS (SELECT 1 FROM moved) RETURNING id), \
                 lic AS (UPDATE licenses \
                   SET state = CASE WHEN state = $12 THEN $13 WHEN state = $14 THEN $15 ELSE $16 END, \
                     serial = CASE WHEN state = $12 THEN serial END, \
                     version = version + 1, updated_at = $4, \
                     activated_at = CASE WHEN state = $12 THEN $4 ELSE activated_at END \
                   WHERE serial = $17 AND firm_id = $6 AND EXISTS (SELECT 1 FROM moved) \
                     AND ((state = $12 AND id = ANY($18)) \
                       OR ((state = $14 OR state = $19) AND NOT (id = ANY($18)))) \
                   RETURNING id, state) \
                 SELECT (SELECT count(*) FROM moved) AS n, lic.id, lic.state \
                 FROM (SELECT 1) AS one LEFT JOIN lic ON true",
            )
            .bind::<BigInt, _>(u.counter_to)
            .bind::<Text, _>(&u.digest_after)
            .bind::<Text, _>(&u.content_after)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(container_id)
            .bind::<BigInt, _>(firm_id)
            .bind::<BigInt, _>(u.counter_from)
            .bind::<BigInt, _>(u.id)
            .bind::<Text, _>(UpdateState::Confirmed.as_str())
            .bind::<Text, _>(UpdateState::Void.as_str())
            .bind::<Text, _>(UpdateState::Issued.as_str())
            .bind::<Text, _>(S::Pending.as_str())
            .bind::<Text, _>(S::Activated.as_str())
            .bind::<Text, _>(S::Returning.as_str())
            .bind::<Text, _>(S::Available.as_str())
            .bind::<Text, _>(S::Deleted.as_str())
            .bind::<Text, _>(serial)
            .bind::<Array<BigInt>, _>(held)
            .bind::<Text, _>(S::Withdrawing.as_str())
            .bind::<Text, _>(from_digest);
            let rows: Vec<Settled> = Reused(q).load(pg)?;
            if rows.first().is_none_or(|r| r.n <= 0) {
                return Ok(None);
            }
            let mut moved = vec![];
            for r in rows {
                let (Some(id), Some(state)) = (r.id, r.state) else {
                    continue;
                };
                let to = LicenseState::parse(&state)
                    .map_err(|_| Error::internal(format!("license {id} moved to {state}")))?;
                moved.push((id, to));
            }
            moved.sort_unstable_by_key(|m| m.0);
            return Ok(Some(moved));
        }
        Conn::Sqlite(lite) => lite,
    };
    let moved = Reused(
        diesel::update(
            container_firms::table
                .filter(container_firms::container_id.eq(container_id))
                .filter(container_firms::firm_id.eq(firm_id))
                .filter(container_firms::counter.eq(u.counter_from))
                .filter(container_firms::digest.eq(from_digest)),
        )
        .set((
            container_firms::counter.eq(u.counter_to),
            container_firms::digest.eq(&u.digest_after),
            container_firms::content.eq(&u.content_after),
            container_firms::confirmed_at.eq(now),
        ))
        .returning(container_firms::counter),
    )
    .load::<i64>(lite)?;
    if moved.is_empty() {
        return Ok(None);
    }
    Reused(
        diesel::update(
            updates::table
                .filter(updates::container_id.eq(container_id))
                .filter(updates::firm_id.eq(firm_id))
                .filter(updates::counter_from.eq(u.counter_from))
                .filter(updates::state.eq(UpdateState::Issued.as_str())),
        )
        .set((
            updates::state.eq(diesel::dsl::case_when(
                updates::id.eq(u.id),
                UpdateState::Confirmed.as_str().into_sql::<Text>(),
            )
            .otherwise(UpdateState::Void.as_str().into_sql::<Text>())),
            updates::confirmed_at.eq(diesel::dsl::case_when(
                updates::id.eq(u.id),
                now.into_sql::<Timestamp>(),
            )),
        ))
        .returning(updates::id),
    )
    .load::<i64>(lite)?;
    let outstanding: Vec<LicRow> = lic::table
        .inner_join(items::table)
        .filter(lic::serial.eq(serial))
        .filter(lic::firm_id.eq(firm_id))
        // `or`, not `eq_any`: diesel keeps the statement prepared only without IN lists.
        .filter(
            lic::state
                .eq(S::Pending.as_str())
                .or(lic::state.eq(S::Returning.as_str()))
                .or(lic::state.eq(S::Withdrawing.as_str())),
        )
        .select(licenses::LIC_SELECT)
        .order(lic::id.asc())
        .load(lite)?;
    let mut moved = vec![];
    for l in outstanding {
        let Some(to) = settled(l.state, held.contains(&l.id)) else {
            continue;
        };
        let keep = (to == S::Activated).then_some(serial);
        licenses::set_state(c, &l, to, keep, now)?;
        moved.push((l.id, to));
    }
    Ok(Some(moved))
}
