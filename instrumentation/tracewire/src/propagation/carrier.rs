//! Carriers: where propagators read and write their fields.

use std::collections::HashMap;

/// Read access to a carrier (HTTP headers, message headers, a map).
///
/// Keys are compared case-insensitively where the carrier allows it;
/// propagators always ask for lowercase names.
///
/// ```
/// use std::collections::HashMap;
/// use tracewire::propagation::Extractor;
///
/// let map = HashMap::from([("Traceparent".to_owned(), "00-abc".to_owned())]);
/// assert_eq!(map.get_value("traceparent"), Some(&b"00-abc"[..]));
/// assert_eq!(map.count("traceparent"), 1);
/// ```
pub trait Extractor {
    /// The first value of `key`, if any.
    fn get_value(&self, key: &str) -> Option<&[u8]>;

    /// Calls `f` with every value of `key`, in order, and returns how many
    /// there were. Carriers that hold one value per key need not override it.
    fn for_each_value(&self, key: &str, f: &mut dyn FnMut(&[u8])) -> usize {
        match self.get_value(key) {
            Some(value) => {
                f(value);
                1
            }
            None => 0,
        }
    }

    /// How many values `key` has.
    fn count(&self, key: &str) -> usize {
        self.for_each_value(key, &mut |_| {})
    }
}

/// Write access to a carrier.
///
/// ```
/// use std::collections::HashMap;
/// use tracewire::propagation::Injector;
///
/// let mut map = HashMap::new();
/// map.set_value("baggage", "user=alice");
/// assert_eq!(map["baggage"], "user=alice");
/// ```
pub trait Injector {
    /// Sets `key` to `value`, replacing every earlier value of `key`.
    /// tracewire's propagators pass lowercase ASCII names and visible-ASCII
    /// values; a carrier skips what it cannot hold rather than panic.
    fn set_value(&mut self, key: &'static str, value: &str);
}

#[cfg(feature = "http")]
impl Extractor for http::HeaderMap {
    fn get_value(&self, key: &str) -> Option<&[u8]> {
        match known_header(key) {
            Some(name) => self.get(name),
            None => self.get(key),
        }
        .map(http::HeaderValue::as_bytes)
    }

    fn for_each_value(&self, key: &str, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        let values = match known_header(key) {
            Some(name) => self.get_all(name),
            None => self.get_all(key),
        };
        for value in values {
            f(value.as_bytes());
            n += 1;
        }
        n
    }
}

/// The header names our propagators read, made once: looking a `&str` up
/// in a `HeaderMap` first parses and checks it as a header name, and
/// extraction does that for several names on every incoming request.
#[cfg(feature = "http")]
fn known_header(key: &str) -> Option<&'static http::HeaderName> {
    static KNOWN: [http::HeaderName; 8] = [
        http::HeaderName::from_static("traceparent"),
        http::HeaderName::from_static("tracestate"),
        http::HeaderName::from_static("baggage"),
        http::HeaderName::from_static("b3"),
        http::HeaderName::from_static("x-b3-traceid"),
        http::HeaderName::from_static("x-b3-spanid"),
        http::HeaderName::from_static("x-b3-sampled"),
        http::HeaderName::from_static("x-b3-flags"),
    ];
    KNOWN.iter().find(|name| name.as_str() == key)
}

#[cfg(feature = "http")]
impl Injector for http::HeaderMap {
    /// A key that is not a valid header name (a user's propagator may pass
    /// any `&str`; uppercase is lowered) or a value that is not visible
    /// ASCII is skipped rather than breaking the request.
    fn set_value(&mut self, key: &'static str, value: &str) {
        let name = match known_header(key) {
            Some(name) => name.clone(),
            None => match http::HeaderName::from_bytes(key.as_bytes()) {
                Ok(name) => name,
                Err(_) => return,
            },
        };
        if let Ok(value) = http::HeaderValue::from_str(value) {
            self.insert(name, value);
        }
    }
}

/// Looks `key` up exactly, then case-insensitively.
impl<S: std::hash::BuildHasher> Extractor for HashMap<String, String, S> {
    fn get_value(&self, key: &str) -> Option<&[u8]> {
        self.get(key)
            .or_else(|| {
                self.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .map(String::as_bytes)
    }
}

impl<S: std::hash::BuildHasher> Injector for HashMap<String, String, S> {
    fn set_value(&mut self, key: &'static str, value: &str) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(key));
        self.insert(key.to_owned(), value.to_owned());
    }
}

/// A list of `(name, value)` headers, as Kafka and AMQP messages carry them;
/// names compare case-insensitively and may repeat.
impl<K: AsRef<str>, V: AsRef<[u8]>> Extractor for [(K, V)] {
    fn get_value(&self, key: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_ref())
    }

    fn for_each_value(&self, key: &str, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        for (_, v) in self
            .iter()
            .filter(|(k, _)| k.as_ref().eq_ignore_ascii_case(key))
        {
            f(v.as_ref());
            n += 1;
        }
        n
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Extractor for Vec<(K, V)> {
    fn get_value(&self, key: &str) -> Option<&[u8]> {
        self.as_slice().get_value(key)
    }

    fn for_each_value(&self, key: &str, f: &mut dyn FnMut(&[u8])) -> usize {
        self.as_slice().for_each_value(key, f)
    }
}

/// Replaces every header named `key` (case-insensitively) with one at the end.
impl Injector for Vec<(String, Vec<u8>)> {
    fn set_value(&mut self, key: &'static str, value: &str) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.push((key.to_owned(), value.as_bytes().to_vec()));
    }
}

/// Replaces every header named `key` (case-insensitively) with one at the end.
impl Injector for Vec<(String, String)> {
    fn set_value(&mut self, key: &'static str, value: &str) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.push((key.to_owned(), value.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "http")]
    #[test]
    fn header_map_injection_takes_any_key_and_never_panics() {
        let mut headers = http::HeaderMap::new();
        headers.set_value("X-Vendor-Trace", "abc");
        headers.set_value("bad key", "skipped");
        headers.set_value("", "skipped");
        headers.set_value("traceparent", "not\nvisible");
        assert_eq!(headers["x-vendor-trace"], "abc");
        assert_eq!(headers.len(), 1);
    }

    /// Every value of `key`, in order.
    fn values(extractor: &dyn Extractor, key: &str) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        extractor.for_each_value(key, &mut |v| seen.push(v.to_vec()));
        seen
    }

    #[test]
    fn header_list_is_case_insensitive_and_keeps_duplicates() {
        let headers = vec![
            ("TraceParent".to_owned(), b"a".to_vec()),
            ("other".to_owned(), b"b".to_vec()),
            ("traceparent".to_owned(), b"c".to_vec()),
        ];
        assert_eq!(headers.get_value("traceparent"), Some(&b"a"[..]));
        assert_eq!(headers.count("traceparent"), 2);
        assert_eq!(values(&headers, "traceparent"), [b"a", b"c"]);
    }

    #[test]
    fn header_list_injection_replaces_stale_values() {
        let mut headers = vec![
            ("Traceparent".to_owned(), b"old".to_vec()),
            ("user".to_owned(), b"kept".to_vec()),
        ];
        headers.set_value("traceparent", "new");
        assert_eq!(
            headers,
            vec![
                ("user".to_owned(), b"kept".to_vec()),
                ("traceparent".to_owned(), b"new".to_vec())
            ]
        );
    }

    #[test]
    fn hashmap_falls_back_to_case_insensitive_lookup() {
        let map = HashMap::from([("X-B3-TraceId".to_owned(), "abc".to_owned())]);
        assert_eq!(map.get_value("x-b3-traceid"), Some(&b"abc"[..]));
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_map_gives_lines_in_order() {
        let mut headers = http::HeaderMap::new();
        headers.append("tracestate", "a=1".parse().unwrap());
        headers.append("tracestate", "b=2".parse().unwrap());
        assert_eq!(values(&headers, "tracestate"), [b"a=1", b"b=2"]);
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_maps_are_read_by_known_and_other_names_alike() {
        let mut headers = http::HeaderMap::new();
        headers.append("traceparent", "tp".parse().unwrap());
        headers.append("x-other", "o".parse().unwrap());
        headers.append("b3", "1".parse().unwrap());
        headers.append("b3", "2".parse().unwrap());
        assert_eq!(headers.get_value("traceparent"), Some(&b"tp"[..]));
        assert_eq!(headers.get_value("TraceParent"), Some(&b"tp"[..]));
        assert_eq!(headers.get_value("x-other"), Some(&b"o"[..]));
        assert_eq!(headers.get_value("tracestate"), None);
        let mut seen = Vec::new();
        assert_eq!(
            headers.for_each_value("b3", &mut |v| seen.push(v.to_vec())),
            2
        );
        assert_eq!(seen, [b"1".to_vec(), b"2".to_vec()]);
        assert_eq!(headers.for_each_value("X-Other", &mut |_| {}), 1);
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_map_gives_values_that_are_not_utf8_as_bytes() {
        // `HeaderValue` admits `obs-text` (0x80-0xff) but no control
        // characters other than tab; the extractor hands the bytes on and
        // the parsers skip what is not valid.
        let mut headers = http::HeaderMap::new();
        headers.append(
            "baggage",
            http::HeaderValue::from_bytes(b"k=\xff\xfe").unwrap(),
        );
        headers.append("baggage", http::HeaderValue::from_bytes(b"a=\t1").unwrap());
        assert!(http::HeaderValue::from_bytes(b"a=\x01").is_err());
        assert!(http::HeaderValue::from_bytes(b"a=\r\n").is_err());
        assert_eq!(headers.get_value("baggage"), Some(&b"k=\xff\xfe"[..]));
        assert_eq!(values(&headers, "baggage"), [&b"k=\xff\xfe"[..], b"a=\t1"]);
    }
}
