//! XML text as the connectors (and the SOAP front door) accept and write it.

/// The five predefined entities and character references (`&#38;`, `&#x26;`); any other
/// entity is refused (nothing declares one: DOCTYPE is refused).
pub(crate) fn resolve_ref(r: &quick_xml::events::BytesRef) -> std::result::Result<char, String> {
    let name = r.decode().map_err(|e| format!("entity: {e}"))?;
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix('x') {
            Some(hex) if hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()
            }
            Some(_) => None,
            None if number.bytes().all(|b| b.is_ascii_digit()) => number.parse().ok(),
            None => None,
        };
        return match code.and_then(char::from_u32) {
            Some(c) => xml_text(&c.to_string()).map(|_| c),
            None => Err(format!("&{name}; is not a character")),
        };
    }
    match name.as_ref() {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        other => Err(format!("the entity &{other}; is not accepted")),
    }
}

/// Text as XML 1.0 allows it: no control character but tab, line feed and carriage return,
/// and neither U+FFFE nor U+FFFF (written raw or as a character reference).
pub(crate) fn xml_text(s: &str) -> std::result::Result<&str, String> {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    match s.chars().find(|c| !allowed(*c)) {
        None => Ok(s),
        Some(c) => Err(format!(
            "the character U+{:04X} is not allowed in XML",
            c as u32
        )),
    }
}

/// XML text escaping.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
