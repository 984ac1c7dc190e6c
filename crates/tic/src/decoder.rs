//! The streaming decoder: bytes in, in chunks of any size; frames out.

use std::collections::VecDeque;
use std::io::{self, Read};

use crate::encode::{CR, EOT, ETX, LF, STX};
use crate::group::{MAX_GROUP_LEN, label_of, parse};
use crate::{Group, GroupError, Mode, Reason};

/// The most groups a frame may hold; those past it are dropped and
/// counted. A standard frame has about 70.
pub const MAX_GROUPS: usize = 256;

/// The most [`GroupError`]s a frame keeps; past it, dropped groups are
/// only counted.
pub const MAX_ERRORS: usize = 16;

/// How a frame ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// ETX: the frame is whole.
    Complete,
    /// EOT: the meter interrupted the frame.
    Interrupted,
    /// An STX came before the frame's ETX (the ETX was lost).
    Restarted,
    /// The input ended inside the frame ([`Decoder::finish`]).
    EndOfInput,
}

/// One frame, STX to ETX (or to whatever cut it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The stream's mode, once a valid group told it; `None` while no
    /// group of the stream has been valid.
    pub mode: Option<Mode>,
    /// The valid groups, in the order they came.
    pub groups: Vec<Group>,
    /// How many groups were dropped (bad checksum, malformed, other mode,
    /// unterminated, past [`MAX_GROUPS`]).
    pub dropped: usize,
    /// Why, for the first [`MAX_ERRORS`] of them.
    pub errors: Vec<GroupError>,
    /// How the frame ended.
    pub end: End,
}

impl Frame {
    /// Whether the frame ended with its ETX.
    pub fn is_complete(&self) -> bool {
        self.end == End::Complete
    }

    /// The first group with this label.
    pub fn get(&self, label: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.label == label)
    }
}

/// What a decoder has seen since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames given out, whatever their end.
    pub frames: u64,
    /// Frames that ended other than with ETX.
    pub cut_frames: u64,
    /// Valid groups.
    pub groups: u64,
    /// Dropped groups.
    pub dropped: u64,
    /// Groups dropped because they were of the other mode.
    pub mode_mismatches: u64,
    /// Bytes outside any group (before the first STX, between frames,
    /// between a CR and the next LF), ignored.
    pub stray_bytes: u64,
}

/// Where the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Outside a frame: waiting for STX.
    Outside,
    /// In a frame, between groups.
    Frame,
    /// In a group, after its LF.
    Group,
}

/// A streaming TIC decoder.
///
/// Feed it bytes as they come ([`Decoder::feed`]); it calls back with each
/// frame as its end arrives. The mode is told by the first valid group
/// (HT separators: standard; SP: historic) and then kept: a group of the
/// other mode is dropped as [`Reason::ModeMismatch`]. A meter changes mode
/// only with its baud rate, so a serial port reading the other mode needs
/// reopening and a new decoder anyway.
///
/// Memory is bounded: one group of at most [`MAX_GROUP_LEN`] bytes and one
/// frame of at most [`MAX_GROUPS`] groups.
#[derive(Debug, Clone)]
pub struct Decoder {
    at: At,
    mode: Option<Mode>,
    group: Vec<u8>,
    /// The group's length, counting bytes past `MAX_GROUP_LEN` not kept.
    group_len: usize,
    frame: Vec<Group>,
    dropped: usize,
    errors: Vec<GroupError>,
    stats: Stats,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder that tells the mode from the first valid group.
    pub fn new() -> Decoder {
        Decoder {
            at: At::Outside,
            mode: None,
            group: Vec::with_capacity(MAX_GROUP_LEN),
            group_len: 0,
            frame: Vec::new(),
            dropped: 0,
            errors: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// A decoder that accepts only `mode`.
    pub fn with_mode(mode: Mode) -> Decoder {
        Decoder {
            mode: Some(mode),
            ..Decoder::new()
        }
    }

    /// The stream's mode, once known.
    pub fn mode(&self) -> Option<Mode> {
        self.mode
    }

    /// What the decoder has seen so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Decodes `bytes`, calling `on_frame` with each frame that ends in
    /// them. Whatever the chunking, the frames are the same.
    pub fn feed(&mut self, bytes: &[u8], mut on_frame: impl FnMut(Frame)) {
        let mut i = 0;
        while i < bytes.len() {
            if self.at == At::Group {
                // Copy the run of group bytes up to the next control byte.
                let rest = &bytes[i..];
                let run = rest
                    .iter()
                    .position(|&b| is_control(b))
                    .unwrap_or(rest.len());
                let room = MAX_GROUP_LEN.saturating_sub(self.group.len());
                self.group.extend_from_slice(&rest[..run.min(room)]);
                self.group_len += run;
                i += run;
                if i == bytes.len() {
                    break;
                }
            }
            let b = bytes[i];
            i += 1;
            match (b, self.at) {
                (STX, At::Outside) => self.at = At::Frame,
                (STX, _) => {
                    on_frame(self.end_frame(End::Restarted));
                    self.at = At::Frame;
                }
                (ETX, At::Frame | At::Group) => on_frame(self.end_frame(End::Complete)),
                (EOT, At::Frame | At::Group) => on_frame(self.end_frame(End::Interrupted)),
                (LF, At::Frame) => self.start_group(),
                (LF, At::Group) => {
                    self.drop_group(self.unterminated());
                    self.start_group();
                }
                (CR, At::Group) => {
                    self.end_group();
                    self.at = At::Frame;
                }
                _ => self.stats.stray_bytes += 1,
            }
        }
    }

    /// Ends the input: a frame still open is given out as
    /// [`End::EndOfInput`], with the groups it had.
    pub fn finish(&mut self) -> Option<Frame> {
        (self.at != At::Outside).then(|| self.end_frame(End::EndOfInput))
    }

    fn start_group(&mut self) {
        self.group.clear();
        self.group_len = 0;
        self.at = At::Group;
    }

    fn end_group(&mut self) {
        if self.frame.len() >= MAX_GROUPS {
            self.drop_group(GroupError {
                label: label_of(&self.group),
                reason: Reason::TooManyGroups { max: MAX_GROUPS },
            });
            return;
        }
        let parsed = if self.group_len > MAX_GROUP_LEN {
            Err(GroupError {
                label: label_of(&self.group),
                reason: Reason::TooLong {
                    len: self.group_len,
                    max: MAX_GROUP_LEN,
                },
            })
        } else {
            parse(&self.group, self.mode)
        };
        match parsed {
            Ok((mode, group)) => {
                self.mode = Some(mode);
                self.stats.groups += 1;
                self.frame.push(group);
            }
            Err(e) => self.drop_group(e),
        }
    }

    fn unterminated(&self) -> GroupError {
        GroupError {
            label: label_of(&self.group),
            reason: Reason::Unterminated,
        }
    }

    fn drop_group(&mut self, error: GroupError) {
        self.dropped += 1;
        self.stats.dropped += 1;
        if matches!(error.reason, Reason::ModeMismatch { .. }) {
            self.stats.mode_mismatches += 1;
        }
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(error);
        }
    }

    fn end_frame(&mut self, end: End) -> Frame {
        // A group cut by ETX is bad; one cut by the meter's EOT or by the
        // end of input is only unfinished, not counted.
        if self.at == At::Group && matches!(end, End::Complete | End::Restarted) {
            self.drop_group(self.unterminated());
        }
        self.at = At::Outside;
        self.stats.frames += 1;
        if end != End::Complete {
            self.stats.cut_frames += 1;
        }
        Frame {
            mode: self.mode,
            groups: std::mem::take(&mut self.frame),
            dropped: std::mem::take(&mut self.dropped),
            errors: std::mem::take(&mut self.errors),
            end,
        }
    }
}

fn is_control(b: u8) -> bool {
    matches!(b, STX | ETX | EOT | LF | CR)
}

/// Decodes bytes held whole in memory; a frame the bytes end inside is
/// the last, as [`End::EndOfInput`].
pub fn decode(bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut decoder = Decoder::new();
    decoder.feed(bytes, |f| frames.push(f));
    frames.extend(decoder.finish());
    frames
}

/// Frames read from a `Read` (a serial port, a file), one at a time.
#[derive(Debug)]
pub struct FrameReader<R> {
    reader: R,
    decoder: Decoder,
    ready: VecDeque<Frame>,
    buf: Box<[u8]>,
    done: bool,
}

impl<R: Read> FrameReader<R> {
    /// Reads `reader` in chunks of up to 4 KiB.
    pub fn new(reader: R) -> FrameReader<R> {
        FrameReader {
            reader,
            decoder: Decoder::new(),
            ready: VecDeque::new(),
            buf: vec![0; 4096].into_boxed_slice(),
            done: false,
        }
    }

    /// The decoder, for its mode and statistics.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }
}

impl<R: Read> Iterator for FrameReader<R> {
    type Item = io::Result<Frame>;

    fn next(&mut self) -> Option<io::Result<Frame>> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Some(Ok(frame));
            }
            if self.done {
                return None;
            }
            match self.reader.read(&mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    self.ready.extend(self.decoder.finish());
                }
                Ok(n) => {
                    let ready = &mut self.ready;
                    self.decoder.feed(&self.buf[..n], |f| ready.push_back(f));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
