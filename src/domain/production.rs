//! Production orders: N dongles programmed on the production line, each to hold the same
//! licenses (the order's lines, per dongle). The order's licenses are dealt to N slots; a
//! slot is free, assigned to a dongle serial (an update for it was issued), or programmed (a
//! receipt proved every license of the slot activated in that dongle). These rules say how
//! the licenses are dealt, what state a slot is in, which refusal a dongle that asks to be
//! programmed gets, and how a station's failure report moves a slot. (Over 600 lines for
//! its tables: the rules are half of the file, the other half lists every case they decide.)
use serde::Serialize;

use super::{ContainerType, ItemKind, LicenseState, MAX_QUANTITY};
use crate::error::{Error, Result};

/// A slot's state: derived from its serial and its licenses, never stored (the server
/// believes receipts, through whatever door they come).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    /// No dongle yet.
    Free,
    /// A dongle's update was issued; no receipt has proved every license yet.
    Assigned,
    /// A receipt proved every license of the slot activated in its dongle.
    Programmed,
    /// Its licenses were taken from the dongle again (recycled, or withdrawn by the vendor):
    /// it holds nothing and is not free.
    Withdrawn,
}

impl SlotState {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotState::Free => "free",
            SlotState::Assigned => "assigned",
            SlotState::Programmed => "programmed",
            SlotState::Withdrawn => "withdrawn",
        }
    }
}

/// A license of a slot as the slot's state looks at it: its state and the container it is in.
#[derive(Debug, Clone, Copy)]
pub struct SlotLicense<'a> {
    pub state: LicenseState,
    pub serial: Option<&'a str>,
}

/// The state of a slot with dongle `serial` (none: free) and its licenses.
/// A slot whose every license was deleted is withdrawn, with a dongle or without (the
/// vendor withdrew the licenses before it was programmed: it cannot be programmed).
pub fn slot_state(serial: Option<&str>, licenses: &[SlotLicense]) -> SlotState {
    let all = |f: &dyn Fn(&SlotLicense) -> bool| !licenses.is_empty() && licenses.iter().all(f);
    if all(&|l| l.state == LicenseState::Deleted) {
        return SlotState::Withdrawn;
    }
    let Some(serial) = serial else {
        return SlotState::Free;
    };
    if all(&|l| l.state == LicenseState::Activated && l.serial == Some(serial)) {
        SlotState::Programmed
    } else {
        SlotState::Assigned
    }
}

/// The size of a production order: `dongles` dongles of `per_dongle` licenses per line. The
/// order made from it holds every license, so together they stay within one order's limit.
pub fn check_size(dongles: i64, per_dongle: &[i64]) -> Result<()> {
    if !(1..=i64::from(MAX_QUANTITY)).contains(&dongles) {
        return Err(Error::invalid(
            "dongles",
            format!("between 1 and {MAX_QUANTITY}"),
        ));
    }
    if per_dongle.is_empty() {
        return Err(Error::invalid(
            "lines",
            "a production order needs at least one line",
        ));
    }
    for (i, q) in per_dongle.iter().enumerate() {
        if !(1..=i64::from(MAX_QUANTITY)).contains(q) {
            return Err(Error::invalid(
                format!("lines[{i}].quantity"),
                format!("between 1 and {MAX_QUANTITY} per dongle"),
            ));
        }
    }
    let total: i64 = per_dongle.iter().sum::<i64>().saturating_mul(dongles);
    if total > i64::from(MAX_QUANTITY) {
        return Err(Error::invalid(
            "dongles",
            format!(
                "{dongles} dongles of {} licenses each are {total} licenses; at most \
                 {MAX_QUANTITY} in one production order",
                per_dongle.iter().sum::<i64>()
            ),
        ));
    }
    Ok(())
}

/// An item of a production order, as its lines name it.
#[derive(Debug, Clone)]
pub struct ItemFacts<'a> {
    pub item_id: &'a str,
    pub kind: ItemKind,
    pub firm_id: i64,
    pub container_types: &'a [ContainerType],
}

/// The items of a production order: license items that may go into a dongle, all of one
/// firm code (a dongle is programmed for one firm at a time). Returns that firm.
pub fn check_items(items: &[ItemFacts]) -> Result<i64> {
    let mut firm = None;
    for (i, it) in items.iter().enumerate() {
        let field = format!("lines[{i}].item_id");
        if it.kind != ItemKind::License {
            return Err(Error::invalid(
                field,
                format!(
                    "{} is an {} item; a production order holds license items",
                    it.item_id,
                    it.kind.as_str()
                ),
            ));
        }
        if !it.container_types.contains(&ContainerType::Dongle) {
            return Err(Error::invalid(
                field,
                format!("{} cannot go into a dongle", it.item_id),
            ));
        }
        match firm {
            None => firm = Some(it.firm_id),
            Some(f) if f == it.firm_id => {}
            Some(_) => {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{} has another firm code than the order's first item; the items of \
                         one production order have one firm code",
                        it.item_id
                    ),
                ))
            }
        }
    }
    firm.ok_or_else(|| Error::invalid("lines", "a production order needs at least one line"))
}

/// Deals the order's licenses to its slots: `made[l]` are the licenses of line `l` in order
/// (`dongles × per_dongle[l]` of them); slot `s` (0-based) gets, of every line, the
/// `per_dongle[l]` licenses from `s × per_dongle[l]` on.
pub fn deal(made: &[Vec<i64>], per_dongle: &[i64], dongles: usize) -> Result<Vec<Vec<i64>>> {
    if made.len() != per_dongle.len() {
        return Err(Error::internal("a line without its licenses"));
    }
    let mut slots = vec![vec![]; dongles];
    for (ids, q) in made.iter().zip(per_dongle) {
        let q = usize::try_from(*q).map_err(|_| Error::internal("a negative quantity"))?;
        if ids.len() != q * dongles {
            return Err(Error::internal(format!(
                "a line has {} licenses, not {dongles} × {q}",
                ids.len()
            )));
        }
        for (s, slot) in slots.iter_mut().enumerate() {
            slot.extend_from_slice(&ids[s * q..(s + 1) * q]);
        }
    }
    Ok(slots)
}

/// What a dongle's request must be for production: a dongle with its own serial, for the
/// order's firm code.
pub fn dongle_request(
    kind: ContainerType,
    serial: &str,
    firm_code: i64,
    order_firm_code: i64,
) -> Result<()> {
    match kind {
        ContainerType::Dongle if serial == crate::protocol::NEW_SERIAL => {
            Err(Error::InvalidMessage(
                "a dongle brings its serial from production; `new` is for act containers".into(),
            ))
        }
        ContainerType::Dongle if firm_code != order_firm_code => Err(Error::NotAllowed(format!(
            "the request of dongle {serial} is for firm code {firm_code}; this production \
             order programs licenses of firm code {order_firm_code}"
        ))),
        ContainerType::Dongle => Ok(()),
        other => Err(Error::NotAllowed(format!(
            "production programs dongles; the request is from {} container {serial}",
            other.as_str()
        ))),
    }
}

/// What the server knows of a dongle that asks a production order to be programmed.
#[derive(Debug, Clone, Default)]
pub struct DongleFacts {
    pub serial: String,
    /// The production order asked, and its firm code.
    pub production_order_id: i64,
    pub firm_code: i64,
    /// The slot of this production order assigned to the dongle, with its state.
    pub own_slot: Option<(i32, SlotState)>,
    /// The firm code of another production order that has a slot assigned to the dongle.
    pub other_order: Option<i64>,
    /// Whether the dongle is registered (its serial is known) with other keys than those
    /// that signed the request (it was wiped, or it is another dongle with the same serial).
    pub other_keys: bool,
    /// The container the request's keys are registered for, when it is not this serial
    /// (the dongle was recycled but not wiped: its old registration keeps its keys).
    pub keys_of: Option<String>,
    /// What it confirmed of this firm (its firm update counter), and how many licenses of
    /// this firm are bound to it.
    pub counter: i64,
    pub bound: usize,
    /// The other firm codes it confirmed something of (counter past 0).
    pub other_firms: Vec<i64>,
    /// The production order was cancelled: no new dongle is assigned.
    pub cancelled: bool,
}

/// What is done for a dongle that asks to be programmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// It gets a free slot (if one is left).
    Assign,
    /// It has slot `n` already (a retry, a bridge restarted): that slot's update again.
    Again(i32),
}

/// The refusal, if any, for a dongle that asks to be programmed (the blacklist is asked
/// before, with every contact). In order: its own slot of this order, a slot of another
/// order, licenses of this firm it holds, another firm's, other keys, a cancelled order.
pub fn program(f: &DongleFacts) -> Result<Program> {
    let holds_ours = || {
        Error::NotAllowed(format!(
            "dongle {} already holds licenses of firm code {}; recycle it first",
            f.serial, f.firm_code
        ))
    };
    match f.own_slot {
        Some((slot, SlotState::Programmed)) => {
            return Err(Error::Conflict(format!(
                "dongle {} is already programmed: slot {slot} of production order {}",
                f.serial, f.production_order_id
            )))
        }
        Some((slot, SlotState::Assigned | SlotState::Free)) if !f.other_keys => {
            return Ok(Program::Again(slot))
        }
        Some(_) => return Err(holds_ours()),
        None => {}
    }
    if let Some(code) = f.other_order {
        return Err(if code == f.firm_code {
            holds_ours()
        } else {
            belongs_to(&f.serial, code)
        });
    }
    if f.counter > 0 || f.bound > 0 {
        return Err(holds_ours());
    }
    if let Some(code) = f.other_firms.first() {
        return Err(belongs_to(&f.serial, *code));
    }
    if f.other_keys {
        return Err(Error::NotAllowed(format!(
            "dongle {} is registered with other keys; recycle it first",
            f.serial
        )));
    }
    if let Some(other) = &f.keys_of {
        return Err(Error::NotAllowed(format!(
            "the keys of dongle {} are registered for container {other}; wipe the dongle \
             (new keys) before it is programmed again",
            f.serial
        )));
    }
    if f.cancelled {
        return Err(Error::Conflict(format!(
            "production order {} is cancelled",
            f.production_order_id
        )));
    }
    Ok(Program::Assign)
}

fn belongs_to(serial: &str, firm_code: i64) -> Error {
    Error::NotAllowed(format!("dongle {serial} belongs to firm code {firm_code}"))
}

/// The refusal when no slot is left to assign.
pub fn no_slot_left(production_order_id: i64) -> Error {
    Error::Conflict(format!(
        "production order {production_order_id} has no dongle left to program"
    ))
}

/// A slot as a station's failure report finds it.
#[derive(Debug, Clone, Copy)]
pub struct FailedSlot {
    pub slot: i32,
    pub state: SlotState,
    /// The slot is (still) assigned to the reported dongle; else it was found by the
    /// dongle's last counted failure (it freed the slot).
    pub holds: bool,
    /// The slot's last counted failure was this dongle's, with the same reason.
    pub same_as_last: bool,
}

/// How a failure report moves a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailStep {
    /// `written: false`: the update never reached the dongle; the slot is free again, its
    /// licenses available, the dongle's updates voided; the failure is counted.
    Free,
    /// `written: true` (or unknown): the slot stays assigned; the failure is counted.
    Keep,
    /// The report was counted already (sent again): nothing changes.
    Repeat,
}

/// What a failure report of dongle `serial` (`written`: whether the update may have been
/// committed to it) does to the slot found for it (`None`: none).
pub fn failure(
    serial: &str,
    production_order_id: i64,
    found: Option<FailedSlot>,
    written: bool,
) -> Result<FailStep> {
    let Some(s) = found else {
        return Err(Error::not_found(
            "dongle",
            format!("{serial} in production order {production_order_id}"),
        ));
    };
    match (s.holds, s.state) {
        (true, SlotState::Programmed) => Err(Error::Conflict(format!(
            "dongle {serial} is programmed (slot {}): its receipt proved it",
            s.slot
        ))),
        (true, SlotState::Withdrawn) => Err(Error::Conflict(format!(
            "the licenses of slot {} (dongle {serial}) were withdrawn",
            s.slot
        ))),
        (true, _) if written && s.same_as_last => Ok(FailStep::Repeat),
        (true, _) if written => Ok(FailStep::Keep),
        (true, _) => Ok(FailStep::Free),
        // The slot was freed by this dongle's failure: the same report sent again.
        (false, _) if !written && s.same_as_last => Ok(FailStep::Repeat),
        (false, _) => Err(Error::not_found(
            "dongle",
            format!("{serial} in production order {production_order_id}"),
        )),
    }
}

/// What becomes of a license of a slot freed by a failure (the dongle never got it): an
/// adding update's license is available again, one withdrawn meanwhile is deleted. A license
/// a receipt proved in the dongle cannot be freed.
pub fn freed(id: i64, state: LicenseState) -> Result<Option<LicenseState>> {
    use LicenseState as S;
    match state {
        S::Pending => Ok(Some(S::Available)),
        S::Withdrawing => Ok(Some(S::Deleted)),
        S::Available | S::Deleted => Ok(None),
        S::Activated | S::Returning => Err(Error::Conflict(format!(
            "license {id} is {state}: a receipt proved it in the dongle"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LicenseState as L;

    fn lic(state: LicenseState, serial: Option<&str>) -> SlotLicense<'_> {
        SlotLicense { state, serial }
    }

    #[test]
    fn a_slot_is_programmed_only_when_every_license_is_activated_in_its_dongle() {
        let d = Some("3-1");
        let cases: Vec<(Option<&str>, Vec<SlotLicense>, SlotState)> = vec![
            (None, vec![lic(L::Available, None)], SlotState::Free),
            (None, vec![], SlotState::Free),
            (
                None,
                vec![lic(L::Deleted, None), lic(L::Available, None)],
                SlotState::Free,
            ),
            // Withdrawn before it was programmed: it will never be.
            (
                None,
                vec![lic(L::Deleted, None), lic(L::Deleted, None)],
                SlotState::Withdrawn,
            ),
            (d, vec![lic(L::Pending, d)], SlotState::Assigned),
            (
                d,
                vec![lic(L::Activated, d), lic(L::Activated, d)],
                SlotState::Programmed,
            ),
            // One license still pending: not yet.
            (
                d,
                vec![lic(L::Activated, d), lic(L::Pending, d)],
                SlotState::Assigned,
            ),
            // Activated in another container (moved away): not this dongle's.
            (d, vec![lic(L::Activated, Some("3-2"))], SlotState::Assigned),
            (
                d,
                vec![lic(L::Deleted, None), lic(L::Deleted, None)],
                SlotState::Withdrawn,
            ),
            (
                d,
                vec![lic(L::Deleted, None), lic(L::Withdrawing, d)],
                SlotState::Assigned,
            ),
            // A slot without licenses is never programmed.
            (d, vec![], SlotState::Assigned),
        ];
        for (serial, ls, want) in cases {
            assert_eq!(slot_state(serial, &ls), want, "{serial:?} {ls:?}");
        }
        let words: Vec<&str> = [
            SlotState::Free,
            SlotState::Assigned,
            SlotState::Programmed,
            SlotState::Withdrawn,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        assert_eq!(words, ["free", "assigned", "programmed", "withdrawn"]);
        assert_eq!(
            serde_json::to_value(SlotState::Programmed).unwrap(),
            "programmed"
        );
    }

    #[test]
    fn each_slot_gets_its_share_of_every_line() {
        // 3 dongles: line 0 one license each, line 1 two each.
        let made = vec![vec![1, 2, 3], vec![10, 11, 12, 13, 14, 15]];
        assert_eq!(
            deal(&made, &[1, 2], 3).unwrap(),
            vec![vec![1, 10, 11], vec![2, 12, 13], vec![3, 14, 15]]
        );
        assert_eq!(deal(&[vec![7]], &[1], 1).unwrap(), vec![vec![7]]);
        // A line whose licenses do not fill the dongles exactly is an internal error.
        assert!(deal(&[vec![1, 2]], &[1], 3).is_err());
        assert!(deal(&[vec![1, 2]], &[1, 1], 2).is_err());
    }

    #[test]
    fn a_production_order_stays_within_one_orders_size() {
        let cases: Vec<(i64, Vec<i64>, Option<&str>)> = vec![
            (50, vec![1], None),
            (1, vec![1, 3], None),
            (10_000, vec![1], None),
            (0, vec![1], Some("dongles")),
            (-1, vec![1], Some("dongles")),
            (10_001, vec![1], Some("dongles")),
            (5_001, vec![2], Some("dongles")),
            (2, vec![], Some("lines")),
            (2, vec![0], Some("lines[0].quantity")),
            (2, vec![1, -4], Some("lines[1].quantity")),
        ];
        for (dongles, q, want) in cases {
            let got = check_size(dongles, &q);
            match (got, want) {
                (Ok(()), None) => {}
                (Err(Error::Invalid { field, .. }), Some(f)) => {
                    assert_eq!(field, f, "{dongles} {q:?}")
                }
                (got, want) => panic!("{dongles} {q:?}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn the_items_are_license_items_for_dongles_of_one_firm() {
        use ContainerType as C;
        let both = [C::Act, C::Dongle];
        let act = [C::Act];
        let item = |id, kind, firm_id, types| ItemFacts {
            item_id: id,
            kind,
            firm_id,
            container_types: types,
        };
        let ok = [
            item("A", ItemKind::License, 1, &both[..]),
            item("B", ItemKind::License, 1, &both[..]),
        ];
        assert_eq!(check_items(&ok).unwrap(), 1);
        let cases: Vec<(Vec<ItemFacts>, &str)> = vec![
            (
                vec![item("U", ItemKind::Update, 1, &both[..])],
                "U is an update item",
            ),
            (
                vec![
                    item("A", ItemKind::License, 1, &both[..]),
                    item("S", ItemKind::License, 1, &act[..]),
                ],
                "S cannot go into a dongle",
            ),
            (
                vec![
                    item("A", ItemKind::License, 1, &both[..]),
                    item("G", ItemKind::License, 2, &both[..]),
                ],
                "G has another firm code",
            ),
            (vec![], "at least one line"),
        ];
        for (items, want) in cases {
            let e = check_items(&items).unwrap_err();
            assert_eq!(e.code(), "invalid_input");
            assert!(e.to_string().contains(want), "{e} / {want}");
        }
    }

    #[test]
    fn only_a_dongle_of_the_orders_firm_may_ask() {
        use ContainerType as C;
        let cases = [
            (C::Dongle, "3-1", 10, None),
            (C::Dongle, "new", 10, Some("invalid_message")),
            (C::Dongle, "3-1", 11, Some("not_allowed")),
            (C::Act, "130-1", 10, Some("not_allowed")),
            (C::Act, "new", 10, Some("not_allowed")),
            (C::Cloud, "9-1", 10, Some("not_allowed")),
        ];
        for (kind, serial, firm, want) in cases {
            let got = dongle_request(kind, serial, firm, 10)
                .err()
                .map(|e| e.code());
            assert_eq!(got, want, "{kind:?} {serial} {firm}");
        }
    }

    fn facts() -> DongleFacts {
        DongleFacts {
            serial: "3-1".into(),
            production_order_id: 7,
            firm_code: 10,
            ..Default::default()
        }
    }

    #[test]
    fn each_dongle_gets_its_slot_or_its_refusal() {
        type Tweak = fn(&mut DongleFacts);
        let cases: Vec<(&str, Tweak, std::result::Result<Program, &str>)> = vec![
            ("fresh", |_| {}, Ok(Program::Assign)),
            (
                "retry",
                |f| f.own_slot = Some((4, SlotState::Assigned)),
                Ok(Program::Again(4)),
            ),
            (
                // Its own pending licenses are bound to it: still its own slot.
                "retry with its licenses bound",
                |f| {
                    f.own_slot = Some((4, SlotState::Assigned));
                    f.bound = 2;
                },
                Ok(Program::Again(4)),
            ),
            (
                "retry of a cancelled order",
                |f| {
                    f.own_slot = Some((4, SlotState::Assigned));
                    f.cancelled = true;
                },
                Ok(Program::Again(4)),
            ),
            (
                "programmed",
                |f| {
                    f.own_slot = Some((4, SlotState::Programmed));
                    f.counter = 1;
                },
                Err("conflict: dongle 3-1 is already programmed: slot 4 of production order 7"),
            ),
            (
                "own slot, wiped",
                |f| {
                    f.own_slot = Some((4, SlotState::Assigned));
                    f.other_keys = true;
                },
                Err("not allowed: dongle 3-1 already holds licenses of firm code 10; recycle it first"),
            ),
            (
                "own slot withdrawn",
                |f| f.own_slot = Some((4, SlotState::Withdrawn)),
                Err("not allowed: dongle 3-1 already holds licenses of firm code 10; recycle it first"),
            ),
            (
                "slot of another order",
                |f| f.other_order = Some(10),
                Err("not allowed: dongle 3-1 already holds licenses of firm code 10; recycle it first"),
            ),
            (
                "slot of another firm's order",
                |f| f.other_order = Some(20),
                Err("not allowed: dongle 3-1 belongs to firm code 20"),
            ),
            (
                "holds ours",
                |f| f.counter = 3,
                Err("not allowed: dongle 3-1 already holds licenses of firm code 10; recycle it first"),
            ),
            (
                "licenses bound",
                |f| f.bound = 1,
                Err("not allowed: dongle 3-1 already holds licenses of firm code 10; recycle it first"),
            ),
            (
                "another firm's",
                |f| f.other_firms = vec![20, 30],
                Err("not allowed: dongle 3-1 belongs to firm code 20"),
            ),
            (
                // Ours comes first.
                "ours and another's",
                |f| {
                    f.counter = 1;
                    f.other_firms = vec![20];
                },
                Err("not allowed: dongle 3-1 already holds licenses of firm code 10; recycle it first"),
            ),
            (
                "wiped, holding nothing",
                |f| f.other_keys = true,
                Err("not allowed: dongle 3-1 is registered with other keys; recycle it first"),
            ),
            (
                "wiped, another firm's",
                |f| {
                    f.other_keys = true;
                    f.other_firms = vec![20];
                },
                Err("not allowed: dongle 3-1 belongs to firm code 20"),
            ),
            (
                "recycled, not wiped",
                |f| f.keys_of = Some("3-1~recycled-4".into()),
                Err("not allowed: the keys of dongle 3-1 are registered for container \
                     3-1~recycled-4; wipe the dongle (new keys) before it is programmed again"),
            ),
            (
                "cancelled",
                |f| f.cancelled = true,
                Err("conflict: production order 7 is cancelled"),
            ),
        ];
        for (what, tweak, want) in cases {
            let mut f = facts();
            tweak(&mut f);
            let got = program(&f).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{what}");
        }
        assert_eq!(no_slot_left(7).code(), "conflict");
        assert_eq!(
            no_slot_left(7).to_string(),
            "conflict: production order 7 has no dongle left to program"
        );
    }

    #[test]
    fn a_failure_frees_keeps_or_repeats() {
        let slot = |holds, state, same_as_last| {
            Some(FailedSlot {
                slot: 2,
                state,
                holds,
                same_as_last,
            })
        };
        use FailStep as F;
        use SlotState as S;
        let cases: Vec<(
            Option<FailedSlot>,
            bool,
            std::result::Result<FailStep, &str>,
        )> = vec![
            (slot(true, S::Assigned, false), false, Ok(F::Free)),
            (slot(true, S::Assigned, false), true, Ok(F::Keep)),
            // The same written=true report again: counted once.
            (slot(true, S::Assigned, true), true, Ok(F::Repeat)),
            // written=true was counted, now the station knows it was never written.
            (slot(true, S::Assigned, true), false, Ok(F::Free)),
            // The written=false report again, after it freed the slot.
            (slot(false, S::Free, true), false, Ok(F::Repeat)),
            (slot(false, S::Assigned, true), false, Ok(F::Repeat)),
            (slot(false, S::Free, true), true, Err("unknown_dongle")),
            (slot(false, S::Free, false), false, Err("unknown_dongle")),
            (None, false, Err("unknown_dongle")),
            (None, true, Err("unknown_dongle")),
            (slot(true, S::Programmed, false), false, Err("conflict")),
            (slot(true, S::Programmed, false), true, Err("conflict")),
            (slot(true, S::Withdrawn, false), false, Err("conflict")),
        ];
        for (found, written, want) in cases {
            let got = failure("3-1", 7, found, written).map_err(|e| e.code());
            assert_eq!(got, want, "{found:?} written={written}");
        }
        let e = failure("3-1", 7, None, false).unwrap_err();
        assert_eq!(e.to_string(), "unknown dongle: 3-1 in production order 7");
    }

    #[test]
    fn a_freed_slots_licenses_go_back_unless_a_receipt_proved_them() {
        let table = [
            (L::Available, Ok(None)),
            (L::Pending, Ok(Some(L::Available))),
            (L::Activated, Err("conflict")),
            (L::Returning, Err("conflict")),
            (L::Withdrawing, Ok(Some(L::Deleted))),
            (L::Deleted, Ok(None)),
        ];
        assert_eq!(
            table.len(),
            LicenseState::ALL.len(),
            "every state is listed"
        );
        for (state, want) in table {
            assert_eq!(freed(1, state).map_err(|e| e.code()), want, "{state}");
        }
    }
}
