//! The bodies the portal's forms post: `application/x-www-form-urlencoded`, and
//! `multipart/form-data` (RFC 7578) for the forms that upload a request or receipt file.
//! Only what a browser sends for these forms is read: fields and files, each part with a
//! `Content-Disposition: form-data; name=…` header; anything else is refused.
use crate::error::{Error, Result};

/// A posted form: its fields in order (a name may repeat) and its files.
#[derive(Debug, Default)]
pub struct Form {
    fields: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
}

impl Form {
    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of field `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The content of file `name` as text (the protocol's files are armoured text); none
    /// when no file was chosen.
    pub fn file_text(&self, name: &str) -> Result<Option<String>> {
        match self.files.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, b)) if b.is_empty() => Ok(None),
            Some((_, b)) => String::from_utf8(b.clone())
                .map(Some)
                .map_err(|_| Error::InvalidMessage("the file is not UTF-8 text".into())),
        }
    }

    /// The license ids checked in the form (`license` fields).
    pub fn licenses(&self) -> Result<Vec<i64>> {
        self.all("license")
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| Error::invalid("license", format!("{v:?} is not a license id")))
            })
            .collect()
    }

    /// Reads a body by its content type.
    pub fn parse(content_type: &str, body: &[u8]) -> Result<Form> {
        let (mime, params) = content_type
            .split_once(';')
            .map_or((content_type, ""), |(m, p)| (m, p));
        match mime.trim().to_ascii_lowercase().as_str() {
            "application/x-www-form-urlencoded" => {
                let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                    .map_err(|e| Error::invalid("form", e.to_string()))?;
                Ok(Form {
                    fields,
                    files: vec![],
                })
            }
            "multipart/form-data" => {
                let boundary = params
                    .split(';')
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                    .map(|(_, v)| v.trim().trim_matches('"').to_string())
                    .filter(|b| !b.is_empty() && b.len() <= 70)
                    .ok_or_else(|| Error::invalid("form", "multipart without a boundary"))?;
                multipart(&boundary, body)
            }
            other => Err(Error::invalid(
                "form",
                format!("{other:?} is not a form's content type"),
            )),
        }
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A parameter of a `Content-Disposition` header (`name="x"`), unquoted.
fn disposition_param(header: &str, param: &str) -> Option<String> {
    let mut rest = header;
    while let Some(at) = rest.find(';') {
        rest = &rest[at + 1..];
        let part = rest.trim_start();
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case(param) {
            continue;
        }
        let v = v.trim_start();
        return Some(if let Some(q) = v.strip_prefix('"') {
            // Browsers escape a quote in a file name as %22, so the value ends at the next one.
            q.split('"').next().unwrap_or("").to_string()
        } else {
            v.split(';').next().unwrap_or("").trim().to_string()
        });
    }
    None
}

fn multipart(boundary: &str, body: &[u8]) -> Result<Form> {
    let bad = |why: &str| Error::invalid("form", format!("multipart body: {why}"));
    let delimiter = format!("--{boundary}");
    let mut form = Form::default();
    let mut at = find(body, delimiter.as_bytes(), 0).ok_or_else(|| bad("no first boundary"))?;
    let next_delimiter = format!("\r\n--{boundary}");
    loop {
        at += delimiter.len();
        if body[at..].starts_with(b"--") {
            return Ok(form);
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err(bad("a boundary must end its line"));
        }
        at += 2;
        let head_end =
            find(body, b"\r\n\r\n", at).ok_or_else(|| bad("a part has no header end"))?;
        let head =
            std::str::from_utf8(&body[at..head_end]).map_err(|_| bad("a header is not text"))?;
        let content_start = head_end + 4;
        let end = find(body, next_delimiter.as_bytes(), content_start)
            .ok_or_else(|| bad("a part is not closed"))?;
        let content = &body[content_start..end];
        let disposition = head
            .split("\r\n")
            .find_map(|line| {
                let (k, v) = line.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-disposition")
                    .then(|| v.trim().to_string())
            })
            .ok_or_else(|| bad("a part has no Content-Disposition"))?;
        if !disposition.to_ascii_lowercase().starts_with("form-data") {
            return Err(bad("a part is not form-data"));
        }
        let name =
            disposition_param(&disposition, "name").ok_or_else(|| bad("a part has no name"))?;
        if disposition_param(&disposition, "filename").is_some() {
            form.files.push((name, content.to_vec()));
        } else {
            let value =
                String::from_utf8(content.to_vec()).map_err(|_| bad("a field is not UTF-8"))?;
            form.fields.push((name, value));
        }
        // `end` is at the CRLF before the next delimiter.
        at = end + 2;
        if form.fields.len() + form.files.len() > 1000 {
            return Err(bad("too many parts"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browsers_multipart_body_is_read() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"license\"\r\n\r\n7\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"license\"\r\n\r\n9\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"request\"; filename=\"a;b.lcr\"\r\n\
                    Content-Type: application/octet-stream\r\n\r\n-----BEGIN X-----\r\nline\r\n\r\n\
                    --XyZ--\r\n";
        let f = Form::parse("multipart/form-data; boundary=XyZ", body.as_bytes()).unwrap();
        assert_eq!(f.get("csrf"), Some("abc"));
        assert_eq!(f.licenses().unwrap(), vec![7, 9]);
        assert_eq!(
            f.file_text("request").unwrap().unwrap(),
            "-----BEGIN X-----\r\nline\r\n"
        );
        assert_eq!(f.file_text("receipt").unwrap(), None);
    }

    #[test]
    fn an_empty_file_input_is_no_file() {
        let body = "--b\r\nContent-Disposition: form-data; name=\"request\"; filename=\"\"\r\n\
                    Content-Type: application/octet-stream\r\n\r\n\r\n--b--\r\n";
        let f = Form::parse("multipart/form-data; boundary=\"b\"", body.as_bytes()).unwrap();
        assert_eq!(f.file_text("request").unwrap(), None);
    }

    #[test]
    fn urlencoded_and_broken_bodies() {
        let f = Form::parse(
            "application/x-www-form-urlencoded",
            b"ticket=AB%3BCD&next=%2Fportal",
        )
        .unwrap();
        assert_eq!(
            (f.get("ticket"), f.get("next")),
            (Some("AB;CD"), Some("/portal"))
        );
        for (ct, body) in [
            ("multipart/form-data", "--b\r\n"),
            (
                "multipart/form-data; boundary=b",
                "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunclosed",
            ),
            (
                "multipart/form-data; boundary=b",
                "--b\r\nX: y\r\n\r\nv\r\n--b--",
            ),
            ("text/plain", "a=b"),
        ] {
            assert_eq!(
                Form::parse(ct, body.as_bytes()).unwrap_err().code(),
                "invalid_input",
                "{ct} {body}"
            );
        }
    }
}
