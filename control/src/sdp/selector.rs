//! `a=file-selector` (RFC 5547 §5, §6): which file an offer is about.
//!
//! A pull offer (the offerer is the file receiver, §8.2.2) names the file
//! it wants by one or more selectors: `name`, `type`, `size`, `hash`. The
//! relay serves such an offer from its content store when every selector
//! the offer gives matches the selector of a stored file's original push
//! offer ([`FileSelector::selects`]); a selector the stored offer did not
//! carry cannot be confirmed, so it does not match.

/// The selectors of one `a=file-selector` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSelector {
    /// `name:"…"`, the quoted string as written (percent-encoding kept:
    /// both sides are compared in the same form).
    pub name: Option<String>,
    /// `type:type/subtype`, lowercased, without parameters.
    pub media_type: Option<String>,
    /// `size:N`, octets.
    pub size: Option<u64>,
    /// `hash:algorithm:value`, both lowercased; several may be given.
    pub hashes: Vec<(String, String)>,
}

impl FileSelector {
    /// Parses a selector list; `None` if a selector is malformed or none
    /// is given.
    pub fn parse(v: &str) -> Option<FileSelector> {
        let mut s = FileSelector::default();
        let mut rest = v.trim();
        while !rest.is_empty() {
            let (word, after) = if let Some(r) = rest.strip_prefix("name:\"") {
                // RFC 5547 §6: filename-string has no DQUOTE of its own.
                let end = r.find('"')?;
                s.name = Some(r[..end].to_owned());
                ("", &r[end + 1..])
            } else {
                let end = rest.find(' ').unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            };
            if let Some(t) = word.strip_prefix("type:") {
                let t = t.split(';').next()?.to_ascii_lowercase();
                let (a, b) = t.split_once('/')?;
                if a.is_empty() || b.is_empty() {
                    return None;
                }
                s.media_type = Some(t);
            } else if let Some(n) = word.strip_prefix("size:") {
                if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                s.size = Some(n.parse().ok()?);
            } else if let Some(h) = word.strip_prefix("hash:") {
                let (alg, val) = h.split_once(':')?;
                if alg.is_empty() || val.is_empty() {
                    return None;
                }
                s.hashes
                    .push((alg.to_ascii_lowercase(), val.to_ascii_lowercase()));
            } else if !word.is_empty() {
                return None;
            }
            if !after.is_empty() && !after.starts_with(' ') {
                return None;
            }
            rest = after.trim_start();
        }
        (s != FileSelector::default()).then_some(s)
    }

    /// Every selector of `self` (a pull offer's) is in `stored` (a push
    /// offer's) with the same value.
    pub fn selects(&self, stored: &FileSelector) -> bool {
        fn same<T: PartialEq>(want: &Option<T>, have: &Option<T>) -> bool {
            want.is_none() || want == have
        }
        same(&self.name, &stored.name)
            && same(&self.media_type, &stored.media_type)
            && same(&self.size, &stored.size)
            && self.hashes.iter().all(|h| stored.hashes.contains(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUSH: &str = "name:\"My cool picture.jpg\" type:image/jpeg size:32349 \
                        hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E";

    /// FT-RESUME: the RFC 5547 §9 example selector, and which pull
    /// selectors pick it.
    #[test]
    fn ft_resume_selector_of_the_rfc_example() {
        let s = FileSelector::parse(PUSH).expect("parses");
        assert_eq!(s.name.as_deref(), Some("My cool picture.jpg"));
        assert_eq!(s.media_type.as_deref(), Some("image/jpeg"));
        assert_eq!(s.size, Some(32349));
        assert_eq!(s.hashes[0].0, "sha-1");
        assert!(s.hashes[0].1.starts_with("72:24:5f"));
        let pull = |v: &str| FileSelector::parse(v).expect("pull parses");
        assert!(
            pull("hash:sha-1:72:24:5f:e8:65:3d:da:f3:71:36:2f:86:d4:71:91:3e:e4:a2:ce:2e")
                .selects(&s)
        );
        assert!(pull("name:\"My cool picture.jpg\" size:32349").selects(&s));
        assert!(pull("type:IMAGE/JPEG;x=1").selects(&s));
        assert!(!pull("name:\"other.jpg\"").selects(&s));
        assert!(!pull("size:32348").selects(&s));
        assert!(!pull("hash:sha-256:00").selects(&s), "not confirmable");
        let no_hash = FileSelector::parse("name:\"a\"").expect("parses");
        assert!(!pull("name:\"a\" hash:sha-1:00").selects(&no_hash));
    }

    #[test]
    fn ft_resume_malformed_selectors_are_none() {
        for bad in [
            "",
            "name:\"unterminated",
            "size:12x",
            "size:",
            "type:image",
            "hash:sha-1",
            "colour:red",
            "name:\"a\"size:1",
        ] {
            assert_eq!(FileSelector::parse(bad), None, "{bad:?}");
        }
    }
}
