//! Disjoint mutable views of many byte ranges in a batch's buffers at once ([`split_spans`]),
//! so that a batch of datagrams can be sealed or opened in one call.

use ferrowg_sys::PageBuf;

use crate::offload::PacketRef;

/// Disjoint mutable views of each span of `bufs` (`bufs[buf][start..start + len]`). Spans come
/// sorted by buffer, then offset, and do not overlap (as the data path lays them out); a span
/// that breaks this, or lies outside its buffer, gets `None`.
pub(super) fn split_spans<'a>(
    bufs: &'a mut [PageBuf],
    spans: impl IntoIterator<Item = PacketRef>,
) -> Vec<Option<&'a mut [u8]>> {
    let spans = spans.into_iter();
    let mut out = Vec::with_capacity(spans.size_hint().0);
    let mut next = bufs.iter_mut().enumerate();
    // The buffer being split: (index, what is left of it, offset where that starts).
    let mut cur: Option<(usize, &'a mut [u8], usize)> = None;
    for PacketRef { buf: b, start, len } in spans {
        let end = start + len;
        while cur.as_ref().is_none_or(|c| c.0 < b) {
            match next.next() {
                Some((i, buf)) => cur = Some((i, &mut buf[..], 0)),
                None => {
                    cur = None;
                    break;
                }
            }
        }
        let view = match cur.take() {
            Some((i, rest, at)) if i == b && at <= start && end - at <= rest.len() => {
                let (_, tail) = rest.split_at_mut(start - at);
                let (view, tail) = tail.split_at_mut(len);
                cur = Some((i, tail, end));
                Some(view)
            }
            other => {
                cur = other;
                None
            }
        };
        out.push(view);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(buf: usize, start: usize, len: usize) -> PacketRef {
        PacketRef { buf, start, len }
    }

    #[test]
    fn views_follow_the_spans_and_refuse_disorder() {
        let mut bufs = PageBuf::many(3, 64);
        let views = split_spans(
            &mut bufs,
            [
                span(0, 0, 8),
                span(0, 8, 4),
                span(0, 4, 2), // overlaps the one before
                span(2, 60, 4),
                span(2, 62, 4), // beyond the buffer
                span(1, 0, 1),  // a buffer already passed
            ],
        );
        let lens: Vec<Option<usize>> = views.iter().map(|v| v.as_ref().map(|v| v.len())).collect();
        assert_eq!(lens, [Some(8), Some(4), None, Some(4), None, None]);
    }
}
