//! Opt-in `rpc.message` events: the gRPC messages of a response stream,
//! counted by reading the 5-byte length-prefixed framing of its data
//! frames (1 byte compressed flag, 4 bytes big-endian length, then the
//! message). The reader keeps 5 bytes of state and never allocates, so a
//! message split across data frames (or a header split across them) is
//! counted once, and no input can make it panic or grow.

use std::io::IoSlice;

use bytes::Buf;
use tracing::Span;

use crate::TARGET;

/// The `rpc.message.type` of the events of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Messages this side sent (a server's response stream, a client's
    /// request stream).
    Sent,
    /// Messages this side received (a client's response stream, a
    /// server's request stream).
    Received,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "SENT",
            Direction::Received => "RECEIVED",
        }
    }
}

/// A message whose last byte has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    /// The compressed flag of its header.
    pub(crate) compressed: bool,
    /// The length of the message on the wire (after the header).
    pub(crate) len: u32,
}

/// The framing reader: where in a message the stream is.
#[derive(Clone, Debug, Default)]
pub(crate) struct Framing {
    header: [u8; 5],
    /// Bytes of `header` read so far (0 to 4; 5 is never kept).
    filled: usize,
    /// The message being skipped, and how many of its bytes are left (> 0).
    current: Option<(Message, u32)>,
}

impl Framing {
    /// Reads `chunk`, the next bytes of the stream; calls `on_message` for
    /// every message that ends in it.
    pub(crate) fn feed(&mut self, mut chunk: &[u8], mut on_message: impl FnMut(Message)) {
        while !chunk.is_empty() {
            match self.current {
                Some((message, left)) => {
                    let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    chunk = chunk.get(take..).unwrap_or_default();
                    // `take` is at most `left`, a u32.
                    let left = left - u32::try_from(take).unwrap_or(left);
                    if left == 0 {
                        self.current = None;
                        on_message(message);
                    } else {
                        self.current = Some((message, left));
                    }
                }
                None => {
                    let take = chunk.len().min(5 - self.filled);
                    let (head, rest) = chunk.split_at(take);
                    if let Some(dst) = self.header.get_mut(self.filled..self.filled + take) {
                        dst.copy_from_slice(head);
                    }
                    chunk = rest;
                    self.filled += take;
                    if self.filled == 5 {
                        self.filled = 0;
                        let [flag, a, b, c, d] = self.header;
                        let message = Message {
                            compressed: flag & 1 == 1,
                            len: u32::from_be_bytes([a, b, c, d]),
                        };
                        if message.len == 0 {
                            on_message(message);
                        } else {
                            self.current = Some((message, message.len));
                        }
                    }
                }
            }
        }
    }
}

/// How many slices of a data frame are read: a `Buf` in more pieces
/// (never the case for hyper's and tonic's `Bytes`) stops the counting for
/// the rest of the stream rather than miscounting.
const MAX_SLICES: usize = 16;

/// The `rpc.message` events of one stream.
#[derive(Clone, Debug)]
pub struct MessageEvents {
    direction: Direction,
    framing: Framing,
    /// The `rpc.message.id` of the last event (ids start at 1).
    last_id: u64,
    /// Counting stopped (a data frame in too many pieces).
    stopped: bool,
}

impl MessageEvents {
    pub(crate) fn new(direction: Direction) -> Self {
        MessageEvents {
            direction,
            framing: Framing::default(),
            last_id: 0,
            stopped: false,
        }
    }

    /// Reads a data frame of the stream and adds an `rpc.message` event to
    /// `span` for every message that ends in it.
    pub(crate) fn on_data(&mut self, span: &Span, data: &impl Buf) {
        if self.stopped {
            return;
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = data.chunks_vectored(&mut slices);
        let slices = slices.get(..n).unwrap_or_default();
        if slices.iter().map(|s| s.len()).sum::<usize>() < data.remaining() {
            self.stopped = true;
            return;
        }
        let direction = self.direction;
        for slice in slices {
            self.framing.feed(slice, |message| {
                self.last_id += 1;
                event(span, direction, self.last_id, message);
            });
        }
    }
}

#[cfg(feature = "tonic")]
pin_project_lite::pin_project! {
    /// A request body whose messages become `rpc.message` events of
    /// `span` (feature `tonic`: what `Tonic` wraps in tonic's body). The
    /// frames are passed on unchanged. The span handle is let go when the
    /// request stream ends, so a body the transport keeps does not keep
    /// the span open.
    pub(crate) struct CountedBody<B> {
        #[pin]
        inner: B,
        span: Option<Span>,
        events: MessageEvents,
    }
}

#[cfg(feature = "tonic")]
impl<B> CountedBody<B> {
    pub(crate) fn new(inner: B, span: Span, events: MessageEvents) -> Self {
        CountedBody {
            inner,
            span: Some(span),
            events,
        }
    }
}

#[cfg(feature = "tonic")]
impl<B: http_body::Body> http_body::Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let mut inner = this.inner;
        let frame = std::task::ready!(inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(data), Some(span)) = (frame.data_ref(), this.span.as_ref()) {
                    this.events.on_data(span, data);
                }
                if frame.is_trailers() || inner.is_end_stream() {
                    *this.span = None;
                }
            }
            // The end of the stream, or an error that ends it.
            None | Some(Err(_)) => *this.span = None,
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// One `rpc.message` event: `rpc.message.type`, `rpc.message.id` and the
/// size on the wire, as `rpc.message.compressed_size` when the message is
/// compressed, else `rpc.message.uncompressed_size`.
fn event(span: &Span, direction: Direction, id: u64, message: Message) {
    let size = i64::from(message.len);
    tracing::event!(
        target: TARGET,
        parent: span,
        tracing::Level::INFO,
        {
            rpc.message.r#type = direction.as_str(),
            rpc.message.id = id,
            rpc.message.compressed_size = message.compressed.then_some(size),
            rpc.message.uncompressed_size = (!message.compressed).then_some(size),
        },
        "rpc.message"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The framing of `messages` (flag, payload) as one byte string.
    fn encode(messages: &[(bool, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (compressed, payload) in messages {
            out.push(u8::from(*compressed));
            out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
            out.extend_from_slice(payload);
        }
        out
    }

    fn read(chunks: &[&[u8]]) -> Vec<Message> {
        let mut framing = Framing::default();
        let mut found = Vec::new();
        for chunk in chunks {
            framing.feed(chunk, |m| found.push(m));
        }
        found
    }

    #[test]
    fn messages_whole_and_split() {
        let bytes = encode(&[
            (false, b"abc".to_vec()),
            (true, Vec::new()),
            (false, vec![7; 300]),
        ]);
        let expected = vec![
            Message {
                compressed: false,
                len: 3,
            },
            Message {
                compressed: true,
                len: 0,
            },
            Message {
                compressed: false,
                len: 300,
            },
        ];
        assert_eq!(read(&[&bytes]), expected);
        // A byte at a time: headers and payloads split everywhere.
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(read(&single), expected);
        // An incomplete message is not counted.
        assert_eq!(read(&[bytes.get(..bytes.len() - 1).unwrap()]).len(), 2);
    }

    #[test]
    fn a_huge_length_is_only_skipped() {
        // 4 GiB announced, 3 bytes sent: nothing is allocated or counted.
        assert!(read(&[&[0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]]).is_empty());
    }

    proptest! {
        /// Any chunking of a valid stream finds the same messages.
        #[test]
        fn any_chunking_counts_the_same(
            messages in proptest::collection::vec(
                (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let bytes = encode(&messages);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                chunks.push(&bytes[start..cut]);
                start = cut;
            }
            let expected: Vec<Message> = messages
                .iter()
                .map(|(c, p)| Message { compressed: *c, len: u32::try_from(p.len()).unwrap() })
                .collect();
            prop_assert_eq!(read(&chunks), expected);
        }

        /// Arbitrary bytes in arbitrary chunks never panic, and never
        /// find more messages than 5-byte headers fit.
        #[test]
        fn arbitrary_bytes_never_panic(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
        ) {
            let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let total: usize = chunks.iter().map(|c| c.len()).sum();
            prop_assert!(read(&chunks).len() <= total / 5);
        }
    }
}
