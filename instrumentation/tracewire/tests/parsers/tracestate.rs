//! `tracestate`: all or nothing, at most 32 members, duplicates dropped.

use proptest::prelude::*;
use tracewire::TraceState;
use tracewire::trace_state::{MAX_HEADER_LEN, MAX_MEMBERS, is_valid_key, is_valid_value};

use crate::{ANY_CHARS, Seeded, any_text, config};

/// The W3C rules, written plainly: the members kept from a valid value
/// (the first of duplicate keys), `None` when it must be discarded.
fn reference(header: &str) -> Option<Vec<(String, String)>> {
    if header.len() > MAX_HEADER_LEN {
        return None;
    }
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut members = 0;
    for member in header.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !is_valid_key(key) || !is_valid_value(value) {
            return None;
        }
        members += 1;
        if !kept.iter().any(|(k, _)| k == key) {
            kept.push((key.to_owned(), value.to_owned()));
        }
    }
    (members <= MAX_MEMBERS).then_some(kept)
}

const KEY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@";
const VALUE_CHARS: &str = " !\"#$%&'()*+-./0123456789:;<>?@AZ[\\]^_`az{|}~";

/// One member with the spaces and tabs around it: mostly valid, from few
/// keys so that duplicates occur.
fn member((seed, kind): (u64, u8)) -> String {
    let mut g = Seeded(seed);
    let before = g.pick(&["", " ", "\t", " \t"]);
    let after = g.pick(&["", " ", "\t", " \t"]);
    let member = match kind % 8 {
        0..=5 => {
            let key = format!("{}{}", g.text("abcd", 1, 1), g.text(KEY_CHARS, 0, 2));
            let value = format!(
                "{}{}",
                g.text(VALUE_CHARS, 0, 6),
                g.text(&VALUE_CHARS[1..], 1, 1)
            );
            format!("{key}={value}")
        }
        6 => g.text(" !#$*+-./0123456789:;<=>?@AZaz~", 0, 8),
        _ => g.text(ANY_CHARS, 0, 8),
    };
    format!("{before}{member}{after}")
}

fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec((any::<u64>(), any::<u8>()), 0..40).prop_map(|members| {
            members.into_iter().map(member).collect::<Vec<_>>().join(",")
        }),
        1 => any_text(100),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn accepted_exactly_when_w3c_valid(header in header()) {
        let parsed = TraceState::from_header(&header).ok().map(|state| {
            state
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        });
        prop_assert_eq!(parsed, reference(&header));
    }

    #[test]
    fn accepted_values_are_bounded_and_round_trip(header in header()) {
        if let Ok(state) = TraceState::from_header(&header) {
            prop_assert!(state.len() <= MAX_MEMBERS);
            let sent = state.header();
            let longest = MAX_MEMBERS * (256 + 1 + 256) + (MAX_MEMBERS - 1);
            prop_assert!(sent.len() <= longest);
            prop_assert_eq!(TraceState::from_header(&sent), Ok(state.clone()));
            // Adding a key never duplicates one and keeps at most 32.
            let updated = state.insert("a", "x").unwrap();
            prop_assert!(updated.len() <= MAX_MEMBERS);
            prop_assert_eq!(updated.iter().filter(|(k, _)| *k == "a").count(), 1);
        }
    }
}

#[test]
fn oversized_values_are_discarded_unread() {
    let huge = format!("a=1{}", " ,".repeat(200_000));
    assert!(TraceState::from_header(&huge).is_err());
    assert_eq!(reference(&huge), None);
    let many = vec!["a=1"; 50_000].join(",");
    assert!(TraceState::from_header(&many).is_err());
}
