//! `baggage`: bounded reading, invalid members skipped, round trips.

use proptest::prelude::*;
use tracewire::Baggage;
use tracewire::baggage::{MAX_BYTES, MAX_MEMBERS, is_token};
use tracewire::propagation::{BaggagePropagator, Propagator};

use crate::{ANY_CHARS, Seeded, any_bytes, any_text, config, ows};

/// Checks what every parsed baggage must satisfy.
fn check_bounded(baggage: &Baggage) -> Result<(), TestCaseError> {
    prop_assert!(baggage.len() <= MAX_MEMBERS);
    let mut keys: Vec<&str> = baggage.iter().map(|e| e.key()).collect();
    prop_assert!(keys.iter().all(|k| is_token(k)));
    keys.sort_unstable();
    keys.dedup();
    prop_assert_eq!(keys.len(), baggage.len(), "no duplicate keys");
    let sent = baggage.header();
    prop_assert!(sent.len() <= MAX_BYTES);
    prop_assert_eq!(
        &Baggage::from_header(&sent),
        baggage,
        "round trip of {}",
        sent
    );
    Ok(())
}

const TOKEN_CHARS: &str = "abcxyzABCXYZ0189!#$&'*+.^_`|~-";

/// A valid member from a seed: a few keys (so duplicates occur), plain
/// values long enough for 64 of them to pass 8192 bytes.
fn valid_member(seed: u64) -> (String, String) {
    let mut g = Seeded(seed);
    let key = if g.between(0, 2) == 0 {
        g.text("abc", 1, 1)
    } else {
        g.text(TOKEN_CHARS, 1, 6)
    };
    let value = if g.between(0, 1) == 0 {
        g.text("abcdefghijklmnopqrstuvwxyz0123456789", 0, 4)
    } else {
        // One character repeated: generating 400 is slow in debug builds.
        g.text("vwxyz", 1, 1).repeat(g.between(100, 300))
    };
    (key, value)
}

/// What the documented rules keep of valid members joined with `,`: the
/// first 64 members that end, with the `,` after them or the end of the
/// value, within 8192 bytes; a later duplicate key replaces the earlier
/// value in place.
fn expected(members: &[(String, String)]) -> Vec<(String, String)> {
    let total = members
        .iter()
        .map(|(k, v)| k.len() + 1 + v.len() + 1)
        .sum::<usize>();
    let whole = total.saturating_sub(1) <= MAX_BYTES;
    let mut end = 0;
    let mut kept: Vec<(String, String)> = Vec::new();
    for (i, (key, value)) in members.iter().enumerate().take(MAX_MEMBERS) {
        end += usize::from(i > 0) + key.len() + 1 + value.len();
        let within = if whole {
            end <= MAX_BYTES
        } else {
            end < MAX_BYTES
        };
        if !within {
            break;
        }
        match kept.iter_mut().find(|(k, _)| k == key) {
            Some(existing) => existing.1.clone_from(value),
            None => kept.push((key.clone(), value.clone())),
        }
    }
    kept
}

/// A member of any kind, valid or not, from a seed.
fn any_member((seed, kind): (u64, u8)) -> String {
    let mut g = Seeded(seed);
    match kind % 8 {
        0..=4 => {
            let (key, value) = valid_member(g.next());
            let mut space = || g.pick(&["", " ", "\t", " \t"]).to_owned();
            let (a, b, c, d) = (space(), space(), space(), space());
            let properties = match g.between(0, 3) {
                0 => format!(";{a}{}", g.text("pqr", 1, 3)),
                1 => format!(";{}{b}={c}{}", g.text("pqr", 1, 3), g.text("xy%", 0, 3)),
                _ => String::new(),
            };
            format!("{a}{key}{b}={c}{value}{d}{properties}")
        }
        5 => format!(
            "{}=%{}",
            g.text("abc", 1, 3),
            g.text("0123456789ABCDEFabcdefg", 0, 2)
        ),
        6 => g.text(" !\"#$%&'()*+-./09:;<=>?@AZ[\\]^_`az{|}~", 0, 10),
        _ => g.text(ANY_CHARS, 0, 10),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_is_bounded_and_round_trips(header in any_text(200)) {
        check_bounded(&Baggage::from_header(&header))?;
    }

    #[test]
    fn mixed_members_are_bounded_and_round_trip(
        members in proptest::collection::vec((any::<u64>(), any::<u8>()), 0..80),
    ) {
        let members: Vec<String> = members.into_iter().map(any_member).collect();
        check_bounded(&Baggage::from_header(&members.join(",")))?;
    }

    #[test]
    fn valid_members_are_kept_up_to_the_bound(
        seeds in proptest::collection::vec(any::<u64>(), 0..80),
        a in ows(),
        b in ows(),
    ) {
        let members: Vec<(String, String)> = seeds.into_iter().map(valid_member).collect();
        let header = members
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let parsed = Baggage::from_header(&header);
        let got: Vec<(String, String)> = parsed
            .iter()
            .map(|e| (e.key().to_owned(), e.value().to_owned()))
            .collect();
        prop_assert_eq!(got, expected(&members));
        check_bounded(&parsed)?;
        // Spaces and tabs around the whole value are not part of it.
        let padded = format!("{a}{header}{b}");
        if padded.len() <= MAX_BYTES {
            prop_assert_eq!(Baggage::from_header(&padded), parsed);
        }
    }

    #[test]
    fn extraction_from_many_lines_is_bounded(
        lines in proptest::collection::vec(any_bytes(120), 0..6),
    ) {
        let headers: Vec<(String, Vec<u8>)> =
            lines.into_iter().map(|v| ("baggage".to_owned(), v)).collect();
        let cx = BaggagePropagator::new().extract(&headers);
        check_bounded(cx.baggage())?;
        let mut out = Vec::<(String, String)>::new();
        BaggagePropagator::new().inject(&cx, &mut out);
        if let Some((_, sent)) = out.first() {
            prop_assert!(sent.len() <= MAX_BYTES);
            prop_assert!(sent.split(',').count() <= MAX_MEMBERS);
        }
    }
}

#[test]
fn a_400_kb_header_gives_at_most_64_members() {
    let header = (0..45_000)
        .map(|i| format!("key{i:05}=v"))
        .collect::<Vec<_>>()
        .join(",");
    assert!(header.len() > 400_000);
    let baggage = Baggage::from_header(&header);
    assert_eq!(baggage.len(), 64);
    assert_eq!(baggage.iter().last().map(|e| e.key()), Some("key00063"));
}
