//! What the codecs of the four services share: reading typed values with the path of their
//! element named in an error.
use super::envelope::El;
use crate::error::Error;

pub fn iso(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The license ids an operation names (`LicenseId` elements), each an xs:long.
pub fn license_ids(op: &El) -> Result<Vec<i64>, Error> {
    op.all("LicenseId")
        .enumerate()
        .map(|(i, e)| {
            let t = e.text.trim();
            t.parse().map_err(|_| {
                Error::invalid(
                    format!("{}/LicenseId[{}]", op.name, i + 1),
                    format!("{t:?} is not an xs:long"),
                )
            })
        })
        .collect()
}

pub fn need(op: &El, name: &str) -> Result<String, Error> {
    op.text_of(name)
        .ok_or_else(|| Error::invalid(format!("{}/{name}", op.name), "is missing"))
}

pub fn opt_long(op: &El, name: &str) -> Result<Option<i64>, Error> {
    op.text_of(name)
        .map(|t| {
            t.parse().map_err(|_| {
                Error::invalid(
                    format!("{}/{name}", op.name),
                    format!("{t:?} is not an xs:long"),
                )
            })
        })
        .transpose()
}

pub fn long(op: &El, name: &str) -> Result<i64, Error> {
    opt_long(op, name)?.ok_or_else(|| Error::invalid(format!("{}/{name}", op.name), "is missing"))
}

pub fn boolean(op: &El, name: &str) -> Result<bool, Error> {
    match need(op, name)?.as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(Error::invalid(
            format!("{}/{name}", op.name),
            format!("{other:?} is not an xs:boolean"),
        )),
    }
}
