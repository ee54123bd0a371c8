//! Where a connection stands in its HTTP/2 frames, from the bytes read:
//! whether the client is in the middle of something it must finish (its
//! preface, a frame, a header block) or at rest between frames.
//!
//! hyper and h2 wait without limit for the rest of a frame or for the
//! CONTINUATION that ends a header block; [`io`](super::io) gives such a
//! client `read_timeout`. The tracker reads only the 24-byte preface and
//! each frame's 9-byte header (length, type, flags, stream id) and skips
//! payloads by their length: a few comparisons per read, no copy of the
//! data.

/// What an HTTP/2 client sends first (RFC 9113, 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The length of a frame header (RFC 9113, 4.1).
const HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Matching the HTTP/2 preface; this many bytes matched so far.
    Preface(u8),
    /// Not HTTP/2 with a preface (HTTP/1): not followed.
    Other,
    /// Reading a frame header; this many of its bytes arrived.
    Header(u8),
    /// Skipping a frame's payload; this many bytes are still to come.
    Payload(u32),
}

/// The frame position of one connection, fed every byte it reads.
#[derive(Debug, Clone)]
pub(crate) struct Frames {
    phase: Phase,
    /// Inside a header block: a HEADERS or PUSH_PROMISE frame without
    /// END_HEADERS arrived, and no CONTINUATION with END_HEADERS yet.
    in_block: bool,
    /// The part of a frame header that arrived.
    header: [u8; HEADER_LEN],
}

impl Default for Frames {
    fn default() -> Self {
        Frames {
            phase: Phase::Preface(0),
            in_block: false,
            header: [0; HEADER_LEN],
        }
    }
}

impl Frames {
    /// Whether the client has nothing unfinished: between two frames and
    /// outside a header block, or not speaking HTTP/2 with a preface. A
    /// new connection is not at rest until its first bytes arrive.
    pub(crate) fn at_rest(&self) -> bool {
        match self.phase {
            Phase::Other => true,
            Phase::Header(0) => !self.in_block,
            Phase::Preface(_) | Phase::Header(_) | Phase::Payload(_) => false,
        }
    }

    /// Follows `bytes`, the next bytes read. Returns whether the connection
    /// was at rest at some point in them (after a frame ended, say), so
    /// that if it is not at rest now, what it is in the middle of began in
    /// `bytes`.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> bool {
        let mut rested = false;
        while !bytes.is_empty() {
            match self.phase {
                Phase::Other => return true,
                Phase::Preface(matched) => {
                    let want = &PREFACE[usize::from(matched)..];
                    let n = want.len().min(bytes.len());
                    if bytes[..n] != want[..n] {
                        self.phase = Phase::Other;
                        return true;
                    }
                    bytes = &bytes[n..];
                    let matched = usize::from(matched) + n;
                    self.phase = match matched == PREFACE.len() {
                        true => Phase::Header(0),
                        // `matched` is below 24 here.
                        false => Phase::Preface(matched as u8),
                    };
                }
                Phase::Header(have) => {
                    let have = usize::from(have);
                    let n = (HEADER_LEN - have).min(bytes.len());
                    self.header[have..have + n].copy_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    self.phase = match have + n == HEADER_LEN {
                        true => self.header_done(),
                        // Below 9 here.
                        false => Phase::Header((have + n) as u8),
                    };
                }
                Phase::Payload(left) => {
                    // `n` is at most `left`, a u32.
                    let n = (left as usize).min(bytes.len());
                    bytes = &bytes[n..];
                    self.phase = match left as usize - n {
                        0 => Phase::Header(0),
                        rest => Phase::Payload(rest as u32),
                    };
                }
            }
            rested |= self.at_rest();
        }
        rested
    }

    /// A whole frame header arrived: note whether it opens or closes a
    /// header block, and skip its payload.
    fn header_done(&mut self) -> Phase {
        let [l0, l1, l2, kind, flags, ..] = self.header;
        let len = u32::from_be_bytes([0, l0, l1, l2]);
        let ends_block = flags & END_HEADERS != 0;
        match kind {
            HEADERS | PUSH_PROMISE => self.in_block = !ends_block,
            CONTINUATION if ends_block => self.in_block = false,
            // Another frame inside a header block is h2's protocol error
            // to report; the block stays open here.
            _ => {}
        }
        match len {
            0 => Phase::Header(0),
            len => Phase::Payload(len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame header: `len` bytes of payload follow.
    fn header(len: u32, kind: u8, flags: u8, stream: u32) -> Vec<u8> {
        let mut h = len.to_be_bytes()[1..].to_vec();
        h.extend([kind, flags]);
        h.extend(stream.to_be_bytes());
        h
    }

    /// A whole frame with a payload of `len` zeros.
    fn frame(len: u32, kind: u8, flags: u8, stream: u32) -> Vec<u8> {
        let mut f = header(len, kind, flags, stream);
        f.resize(f.len() + len as usize, 0);
        f
    }

    const SETTINGS: u8 = 0x4;
    const DATA: u8 = 0x0;

    /// Feeds `bytes` one at a time, as the slowest client would.
    fn feed_bytewise(frames: &mut Frames, bytes: &[u8]) -> Vec<bool> {
        bytes
            .iter()
            .map(|b| {
                frames.feed(std::slice::from_ref(b));
                frames.at_rest()
            })
            .collect()
    }

    /// Guarantees: a new connection is unfinished until its preface is
    /// whole; the preface split anywhere, then several whole frames in one
    /// read, leave it at rest; HTTP/1 bytes end the tracking at once.
    #[test]
    fn preface_and_whole_frames() {
        let mut f = Frames::default();
        assert!(!f.at_rest());
        assert!(!f.feed(&PREFACE[..5]));
        assert!(!f.at_rest());
        assert!(f.feed(&PREFACE[5..]));
        assert!(f.at_rest());
        let mut several = frame(6, SETTINGS, 0, 0);
        several.extend(frame(4, 0x8, 0, 0)); // WINDOW_UPDATE
        several.extend(frame(8, 0x6, 0, 0)); // PING
        several.extend(frame(0, SETTINGS, 0x1, 0)); // SETTINGS ack, empty
        assert!(f.feed(&several));
        assert!(f.at_rest());

        let mut h1 = Frames::default();
        assert!(h1.feed(b"POST /v1/logs HTTP/1.1\r\n"));
        assert!(h1.at_rest());
        // Even when HTTP/1 starts like the preface.
        let mut pri = Frames::default();
        pri.feed(b"PRI * HTTP/1.1\r\n");
        assert!(pri.at_rest());
    }

    /// Guarantees: a frame header split across reads (at every byte) is
    /// reassembled, its payload skipped by its length, and the connection
    /// is unfinished from the frame's first byte to its last.
    #[test]
    fn split_header_and_payload() {
        let mut f = Frames::default();
        f.feed(PREFACE);
        let data = frame(3, DATA, 0x1, 1);
        let rests = feed_bytewise(&mut f, &data);
        // 12 bytes: unfinished after each but the last.
        assert_eq!(rests.iter().filter(|r| **r).count(), 1);
        assert_eq!(rests.last(), Some(&true));

        // A frame that ends in the middle of a read, the next one's
        // header cut in two: unfinished, but it was at rest in between.
        let mut two = frame(2, DATA, 0, 1);
        two.extend(&header(100, DATA, 0, 1)[..4]);
        assert!(f.feed(&two));
        assert!(!f.at_rest());
        assert!(!f.feed(&header(100, DATA, 0, 1)[4..]));
        assert!(!f.feed(&[0; 99]));
        assert!(f.feed(&[0]));
        assert!(f.at_rest());

        // A payload length of 2^24 - 1, the largest a header can give.
        let mut big = Frames::default();
        big.feed(PREFACE);
        big.feed(&header(0xff_ffff, DATA, 0, 1));
        assert_eq!(big.phase, Phase::Payload(0xff_ffff));
    }

    /// Guarantees: a HEADERS (or PUSH_PROMISE) frame without END_HEADERS
    /// leaves the connection unfinished across whole frames until a
    /// CONTINUATION with END_HEADERS closes the block; HEADERS with
    /// END_HEADERS is finished when its payload is.
    #[test]
    fn continuation_completes_a_header_block() {
        let mut f = Frames::default();
        f.feed(PREFACE);
        assert!(!f.feed(&frame(5, HEADERS, 0x1, 1))); // END_STREAM, no END_HEADERS
        assert!(!f.at_rest());
        f.feed(&frame(5, CONTINUATION, 0, 1));
        assert!(!f.at_rest());
        f.feed(&frame(5, CONTINUATION, END_HEADERS, 1));
        assert!(f.at_rest());

        // Opened and closed in one read.
        let mut block = frame(5, HEADERS, 0, 3);
        block.extend(frame(5, CONTINUATION, END_HEADERS, 3));
        assert!(f.feed(&block));
        assert!(f.at_rest());

        f.feed(&frame(5, PUSH_PROMISE, 0, 5));
        assert!(!f.at_rest());
        f.feed(&frame(0, CONTINUATION, END_HEADERS, 5));
        assert!(f.at_rest());

        f.feed(&frame(5, HEADERS, END_HEADERS | 0x1, 7));
        assert!(f.at_rest());
    }
}
