//! Missing files, bad lines, unknown trace ids and standard input.

use crate::support::{A, data_dir, tracewire, tracewire_with_stdin, with_shop};

#[test]
fn a_missing_file_is_a_clear_error() {
    let stderr = tracewire(&["list", "gateway.jsonl", "no-such-file.jsonl"]).failed();
    assert_eq!(
        stderr,
        "tracewire: cannot open no-such-file.jsonl: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_directory_is_a_clear_error() {
    let stderr = tracewire(&["list", "-f", "."]).failed();
    assert!(stderr.starts_with("tracewire: cannot read .: "), "{stderr}");
}

#[test]
fn bad_lines_are_skipped_and_counted() {
    let run = tracewire(&["list", "bad.jsonl"]);
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.stderr,
        "tracewire: skipped 3 bad lines (first: bad.jsonl:1: EOF while parsing a string at line 1 column 120)\n"
    );
    assert!(
        run.stdout
            .contains("4bf9bbbb00000000000000000000b0de  2023-11-14 22:13:20.000     5.0ms      1"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unknown_trace_id_says_how_to_find_ids() {
    let stderr = tracewire(&with_shop(&["view", "ffff"])).failed();
    assert_eq!(
        stderr,
        "tracewire: no trace id starts with \"ffff\" (2 traces loaded; `tracewire list` shows them)\n"
    );
    let stderr = tracewire(&["critical-path", "ffff", "skew.jsonl"]).failed();
    assert!(stderr.contains("(1 trace loaded;"), "{stderr}");
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates() {
    let mut args = with_shop(&["diff", "4bf9", "5a1c"]);
    args.push("skew.jsonl");
    assert_eq!(
        tracewire(&args).failed(),
        "tracewire: \"4bf9\" matches 2 traces (4bf92f3577b34da6a3ce929d0e0e4736, 4bf9aaaa00000000000000000000c0de); give more digits\n"
    );
}

#[test]
fn a_trace_id_that_is_not_hex_is_rejected() {
    assert_eq!(
        tracewire(&with_shop(&["view", "not-an-id"])).failed(),
        "tracewire: \"not-an-id\" is not a trace id: expected up to 32 hex digits\n"
    );
}

#[test]
fn without_files_standard_input_is_read() {
    let input = std::fs::read(data_dir().join("skew.jsonl")).unwrap();
    let out = tracewire_with_stdin(&["list"], &input).ok();
    assert!(out.contains("4bf9aaaa00000000000000000000c0de"), "{out}");

    // `-` mixes standard input with files.
    let out = tracewire_with_stdin(
        &["critical-path", "4bf9a", "-f", "-", "gateway.jsonl"],
        &input,
    )
    .ok();
    assert!(
        out.ends_with("bottleneck: backend: check disk, 18.0ms of 40.0ms (45.0%)\n"),
        "{out}"
    );

    // Bad lines on standard input are located too.
    let run = tracewire_with_stdin(&["list"], b"oops\n");
    assert_eq!(run.code, Some(0));
    assert_eq!(run.stdout, "no traces found\n");
    assert_eq!(
        run.stderr,
        "tracewire: skipped 1 bad line (first: <stdin>:1: expected value at line 1 column 1)\n"
    );
}

#[test]
fn duplicates_are_reported_once() {
    let run = tracewire(&["list", "skew.jsonl", "skew.jsonl"]);
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.stderr,
        "tracewire: ignored 6 duplicate spans (same trace and span id)\n"
    );
    assert!(
        run.stdout.contains("    52.0ms      6       0  "),
        "{}",
        run.stdout
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let run = tracewire(&["view"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("<TRACE_ID>"), "{}", run.stderr);
    let run = tracewire(&with_shop(&["diff", A, A, "--min-delta", "5"]));
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("needs a unit"), "{}", run.stderr);
}
