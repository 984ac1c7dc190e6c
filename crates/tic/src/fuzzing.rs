//! What the TIC fuzz target and its seed test check: no input panics,
//! the frames do not depend on the chunking, the counts add up, and every
//! decoded group encodes back to itself.

#![allow(clippy::expect_used)] // This module exists to panic when an invariant breaks.

use crate::{Decoder, MAX_ERRORS, MAX_GROUPS, decode, encode_frame};

/// Panics if decoding `data` breaks an invariant.
pub fn check(data: &[u8]) {
    let whole = decode(data);

    // The same bytes in chunks of 1 to 7 bytes, sizes picked by the data.
    let mut decoder = Decoder::new();
    let mut chunked = Vec::new();
    let mut rest = data;
    let mut k = data.first().copied().unwrap_or(0);
    while !rest.is_empty() {
        k = k.wrapping_mul(31).wrapping_add(7);
        let n = usize::from(k % 7 + 1).min(rest.len());
        decoder.feed(&rest[..n], |f| chunked.push(f));
        rest = &rest[n..];
    }
    chunked.extend(decoder.finish());
    assert_eq!(whole, chunked, "the chunking changed the frames");

    let stats = decoder.stats();
    assert_eq!(stats.frames, whole.len() as u64);
    let groups: usize = whole.iter().map(|f| f.groups.len()).sum();
    let dropped: usize = whole.iter().map(|f| f.dropped).sum();
    assert_eq!(stats.groups, groups as u64);
    assert_eq!(stats.dropped, dropped as u64);

    for frame in &whole {
        assert!(frame.groups.len() <= MAX_GROUPS);
        assert_eq!(frame.errors.len(), frame.dropped.min(MAX_ERRORS));
        let Some(mode) = frame.mode else {
            assert!(frame.groups.is_empty(), "groups without a mode");
            continue;
        };
        let bytes = encode_frame(mode, &frame.groups).expect("a decoded group does not encode");
        let again = decode(&bytes);
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].groups, frame.groups,
            "a group does not decode back to itself"
        );
        assert_eq!(again[0].dropped, 0);
        assert!(again[0].is_complete());
    }
}
