//! Opening a byte stream: compression detected by magic bytes, and decoded.
//!
//! Rotated logs are often `.1` or have no extension at all, so the file name
//! says nothing: the first bytes do. gzip (RFC 1952), zstd (RFC 8878),
//! bzip2 and xz are recognised and decoded, each one member or frame after
//! another as `zcat`, `zstdcat`, `bzcat` and `xzcat` do (`cat a.gz b.gz` and
//! many log shippers write several). gzip data followed by padding or junk is
//! read as `zcat` reads it: the members up to the junk count, the junk is
//! ignored, and [`InputReader::ignored_trailing`] says how much there was so
//! the caller can warn.
//!
//! The reader counts the raw bytes it consumed, so a progress bar can show
//! the position against the file's size.

use std::io::{self, BufRead, BufReader, Read};

use super::SourceError;

/// Bytes looked at to recognise a format (xz's magic is the longest).
const HEAD: usize = 6;

/// How an input is compressed, recognised by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    /// Recognises the magic bytes at the start of `head`.
    ///
    /// ```
    /// use strictly::source::decode::Compression;
    /// assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]), Compression::Zstd);
    /// assert_eq!(Compression::detect(b"[2026-"), Compression::None);
    /// ```
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    /// The format's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }
}

/// Where the undecoded bytes come from.
pub(super) enum RawSource {
    File(std::fs::File),
    // `Stdin` rather than a lock: it is `Send`, and with megabyte reads the per-call lock costs nothing.
    Stdin(io::Stdin),
    Other(Box<dyn Read + Send>),
}

/// The raw source, with the bytes peeked for format detection put back in
/// front, counting what it consumed for progress reporting.
pub(super) struct Counted {
    raw: RawSource,
    head: [u8; HEAD],
    head_pos: usize,
    head_len: usize,
    raw_bytes: u64,
    /// Returns true once a read of the raw source itself failed, to tell I/O
    /// errors from corrupt compressed data.
    raw_failed: bool,
}

impl Counted {
    fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = match &mut self.raw {
            RawSource::File(f) => f.read(buf),
            RawSource::Stdin(s) => s.read(buf),
            RawSource::Other(r) => r.read(buf),
        };
        match &result {
            Ok(n) => self.raw_bytes += *n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.raw_failed = true,
        }
        result
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.head_pos < self.head_len {
            let n = (self.head_len - self.head_pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            return Ok(n);
        }
        self.read_raw(buf)
    }
}

/// An opened input: the decoded bytes of a file, stdin or any stream.
pub struct InputReader {
    name: String,
    decoded: Decoded,
}

enum Decoded {
    Plain(Counted),
    Gzip(Box<GzipMembers>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<Counted>>>),
    Bzip2(Box<bzip2::read::MultiBzDecoder<Counted>>),
    Xz(Box<liblzma::read::XzDecoder<Counted>>),
}

/// gzip members one after another, stopping (as `zcat` does) at bytes that
/// do not start another member instead of failing on them.
///
/// flate2's `MultiGzDecoder` would fail on NUL padding (some appenders
/// preallocate) or junk after the last member, losing a readable log.
struct GzipMembers {
    member: Option<flate2::bufread::GzDecoder<BufReader<Counted>>>,
    /// Bytes after the last member that were ignored, and whether all were NUL.
    ignored: Option<(u64, bool)>,
}

impl GzipMembers {
    fn new(counted: Counted) -> GzipMembers {
        GzipMembers {
            member: Some(flate2::bufread::GzDecoder::new(BufReader::with_capacity(
                64 * 1024,
                counted,
            ))),
            ignored: None,
        }
    }

    fn counted(&self) -> Option<&Counted> {
        self.member.as_ref().map(|m| m.get_ref().get_ref())
    }

    /// After a member ended: returns true if and only if another one starts.
    fn next_member(&mut self) -> io::Result<bool> {
        let Some(member) = self.member.take() else {
            return Ok(false);
        };
        let mut rest = member.into_inner();
        let next = rest.fill_buf()?;
        if next.is_empty() {
            self.member = Some(flate2::bufread::GzDecoder::new(rest));
            self.ignored.get_or_insert((0, true));
            return Ok(false);
        }
        if next[0] == 0x1f && next.get(1).is_none_or(|&b| b == 0x8b) {
            self.member = Some(flate2::bufread::GzDecoder::new(rest));
            return Ok(true);
        }
        // Not a member: count what follows (it is read to the end for the
        // progress bar) and remember whether it was only padding.
        let (mut bytes, mut zeros) = (0u64, true);
        loop {
            let buf = rest.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            zeros &= buf.iter().all(|&b| b == 0);
            bytes += buf.len() as u64;
            let n = buf.len();
            rest.consume(n);
        }
        self.ignored = Some((bytes, zeros));
        self.member = Some(flate2::bufread::GzDecoder::new(rest));
        Ok(false)
    }
}

impl Read for GzipMembers {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.ignored.is_some() {
            return Ok(0);
        }
        loop {
            let Some(member) = self.member.as_mut() else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if !self.next_member()? {
                return Ok(0);
            }
        }
    }
}

impl InputReader {
    /// Wraps any byte stream (a network body, a test buffer) like a file:
    /// compression is detected and decoded, and errors name `name`.
    pub fn from_reader(
        name: impl Into<String>,
        reader: impl Read + Send + 'static,
    ) -> Result<InputReader, SourceError> {
        InputReader::new(name.into(), RawSource::Other(Box::new(reader)))
    }

    pub(super) fn new(name: String, raw: RawSource) -> Result<InputReader, SourceError> {
        let mut counted = Counted {
            raw,
            head: [0; HEAD],
            head_pos: 0,
            head_len: 0,
            raw_bytes: 0,
            raw_failed: false,
        };
        // Peek at the first bytes: a pipe may deliver them one read at a time.
        while counted.head_len < HEAD {
            let mut bytes = [0u8; HEAD];
            let want = HEAD - counted.head_len;
            match counted.read_raw(&mut bytes[..want]) {
                Ok(0) => break,
                Ok(n) => {
                    counted.head[counted.head_len..counted.head_len + n]
                        .copy_from_slice(&bytes[..n]);
                    counted.head_len += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(SourceError::Io { name, error }),
            }
        }
        let kind = Compression::detect(&counted.head[..counted.head_len]);
        let decoded = match kind {
            Compression::None => Decoded::Plain(counted),
            Compression::Gzip => Decoded::Gzip(Box::new(GzipMembers::new(counted))),
            Compression::Zstd => match zstd::stream::read::Decoder::new(counted) {
                Ok(d) => Decoded::Zstd(Box::new(d)),
                Err(error) => return Err(SourceError::Io { name, error }),
            },
            Compression::Bzip2 => {
                Decoded::Bzip2(Box::new(bzip2::read::MultiBzDecoder::new(counted)))
            }
            Compression::Xz => Decoded::Xz(Box::new(liblzma::read::XzDecoder::new_multi_decoder(
                counted,
            ))),
        };
        Ok(InputReader { name, decoded })
    }

    /// The name errors use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the input is compressed.
    pub fn compression(&self) -> Compression {
        match self.decoded {
            Decoded::Plain(_) => Compression::None,
            Decoded::Gzip(_) => Compression::Gzip,
            Decoded::Zstd(_) => Compression::Zstd,
            Decoded::Bzip2(_) => Compression::Bzip2,
            Decoded::Xz(_) => Compression::Xz,
        }
    }

    /// Returns true if and only if the input is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.compression() == Compression::Gzip
    }

    /// Bytes after the last gzip member that were ignored (`zcat`'s "trailing
    /// garbage ignored"), and whether they were all NUL; None if there were none.
    pub fn ignored_trailing(&self) -> Option<(u64, bool)> {
        match &self.decoded {
            Decoded::Gzip(g) => g.ignored.filter(|&(bytes, _)| bytes > 0),
            _ => None,
        }
    }

    /// Appends up to `limit` bytes to `buf`, fewer only at the end of the input.
    pub(super) fn read_up_to(&mut self, limit: u64, buf: &mut Vec<u8>) -> io::Result<usize> {
        if let Decoded::Plain(c) = &mut self.decoded
            && c.head_pos == c.head_len
            && let RawSource::File(file) = &mut c.raw
        {
            let result = file.take(limit).read_to_end(buf);
            match &result {
                Ok(n) => c.raw_bytes += *n as u64,
                Err(_) => c.raw_failed = true,
            }
            return result;
        }
        self.take(limit).read_to_end(buf)
    }

    /// Bytes consumed from the underlying file so far (compressed bytes when compressed).
    pub fn raw_bytes_read(&self) -> u64 {
        self.counted().map_or(0, |c| c.raw_bytes)
    }

    fn counted(&self) -> Option<&Counted> {
        match &self.decoded {
            Decoded::Plain(c) => Some(c),
            Decoded::Gzip(d) => d.counted(),
            Decoded::Zstd(d) => Some(d.get_ref().get_ref()),
            Decoded::Bzip2(d) => Some(d.get_ref()),
            Decoded::Xz(d) => Some(d.get_ref()),
        }
    }

    /// Names the input in an error from [`Read::read`], telling corrupt
    /// compressed data from I/O failures.
    pub fn error(&self, error: io::Error) -> SourceError {
        let name = self.name.clone();
        let kind = self.compression();
        if kind != Compression::None && !self.counted().is_some_and(|c| c.raw_failed) {
            SourceError::Decompress {
                name,
                format: kind.name(),
                error,
            }
        } else {
            SourceError::Io { name, error }
        }
    }
}

impl Read for InputReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.decoded {
            Decoded::Plain(c) => c.read(buf),
            Decoded::Gzip(d) => d.read(buf),
            Decoded::Zstd(d) => d.read(buf),
            Decoded::Bzip2(d) => d.read(buf),
            Decoded::Xz(d) => d.read(buf),
        }
    }
}

/// Bytes at the start of an input in which a NUL byte means binary.
pub const BINARY_CHECK_BYTES: u64 = 8 * 1024;

/// Returns why `bytes`, found at `offset` in an input's decoded bytes, show
/// it is not a text log, or None if it may be one.
///
/// Like grep and git: a NUL byte in the first 8 KiB means binary. An access
/// log is text; a program, an image, or compressed data in a format not read
/// here is not, and reading it as text would only produce noise.
pub fn binary_reason(bytes: &[u8], offset: u64) -> Option<String> {
    if offset == 0 && bytes.starts_with(b"\x7fELF") {
        return Some("an executable (ELF)".to_string());
    }
    let look = BINARY_CHECK_BYTES.saturating_sub(offset) as usize;
    let nul = memchr::memchr(0, &bytes[..bytes.len().min(look)])?;
    Some(format!(
        "binary data (a NUL byte at offset {}); compressed logs are read if gzip, zstd, bzip2 or xz",
        offset + nul as u64
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn decode(bytes: Vec<u8>) -> (Vec<u8>, Compression, Option<(u64, bool)>) {
        let mut reader = InputReader::from_reader("t", io::Cursor::new(bytes)).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        (out, reader.compression(), reader.ignored_trailing())
    }

    fn gzip(part: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(part).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_format_is_detected_and_decoded_frame_after_frame() {
        let zstd = [
            zstd::encode_all(&b"one\n"[..], 3).unwrap(),
            zstd::encode_all(&b"two\n"[..], 3).unwrap(),
        ]
        .concat();
        let bz = |part: &[u8]| {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(part).unwrap();
            e.finish().unwrap()
        };
        let xz = |part: &[u8]| {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(part).unwrap();
            e.finish().unwrap()
        };
        for (bytes, kind) in [
            ([gzip(b"one\n"), gzip(b"two\n")].concat(), Compression::Gzip),
            (zstd, Compression::Zstd),
            ([bz(b"one\n"), bz(b"two\n")].concat(), Compression::Bzip2),
            ([xz(b"one\n"), xz(b"two\n")].concat(), Compression::Xz),
            (b"one\ntwo\n".to_vec(), Compression::None),
        ] {
            assert_eq!(
                decode(bytes),
                (b"one\ntwo\n".to_vec(), kind, None),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn gzip_padding_and_junk_are_ignored_and_reported() {
        let mut padded = [gzip(b"one\n"), gzip(b"two\n")].concat();
        padded.extend([0u8; 4096]);
        assert_eq!(
            decode(padded),
            (
                b"one\ntwo\n".to_vec(),
                Compression::Gzip,
                Some((4096, true))
            )
        );
        let mut junk = gzip(b"one\n");
        junk.extend(b"garbage\n");
        assert_eq!(
            decode(junk),
            (b"one\n".to_vec(), Compression::Gzip, Some((8, false)))
        );
    }

    #[test]
    fn binary_is_recognised() {
        assert!(
            binary_reason(b"\x7fELF\x02\x01\x01\0", 0)
                .unwrap()
                .contains("ELF")
        );
        assert!(binary_reason(b"abc\0def", 0).unwrap().contains("offset 3"));
        assert!(
            binary_reason(b"abc\0def", 100)
                .unwrap()
                .contains("offset 103")
        );
        let line = b"[2026-11-20T11:00:00.000Z] \"GET / HTTP/1.1\" 200\n";
        assert_eq!(binary_reason(line, 0), None);
        // Past the first 8 KiB, a NUL is the parser's business (a malformed line).
        let mut late = vec![b'a'; 9000];
        late.push(0);
        assert_eq!(binary_reason(&late, 0), None);
        assert_eq!(binary_reason(b"\0", 8192), None);
    }
}
