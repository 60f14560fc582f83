//! The last lines of a log file, read backwards from its end, so `--tail 10` of a large log
//! costs a few blocks rather than a pass over the whole file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const BLOCK: u64 = 64 * 1024;

/// The last `n` complete lines (each without its `\n`) in `file[..end]`, oldest first, and
/// the offset just after the last `\n` (bytes after it are a line still being written).
pub(super) fn last_lines(file: &File, end: u64, n: usize) -> io::Result<(Vec<Vec<u8>>, u64)> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    // Bytes of the line being assembled, in reverse order of blocks.
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut complete_end: Option<u64> = None;
    let mut pos = end;
    let mut buf = vec![0u8; BLOCK as usize];
    while pos > 0 && lines.len() < n {
        let len = BLOCK.min(pos);
        let start = pos - len;
        let chunk = &mut buf[..len as usize];
        file.read_exact_at(chunk, start)?;
        let mut hi = chunk.len();
        for i in (0..chunk.len()).rev() {
            if chunk[i] != b'\n' {
                continue;
            }
            match complete_end {
                // The last newline: what follows it is not a complete line.
                None => complete_end = Some(start + i as u64 + 1),
                Some(_) => {
                    let mut line = chunk[i + 1..hi].to_vec();
                    line.extend(current.drain(..).rev().flatten());
                    push(&mut lines, line);
                    if lines.len() == n {
                        break;
                    }
                }
            }
            hi = i;
        }
        if lines.len() < n && complete_end.is_some() {
            current.push(chunk[..hi].to_vec());
        }
        pos = start;
    }
    // The file's first line has no newline before it.
    if pos == 0 && lines.len() < n && complete_end.is_some() {
        let line: Vec<u8> = current.drain(..).rev().flatten().collect();
        push(&mut lines, line);
    }
    lines.reverse();
    Ok((lines, complete_end.unwrap_or(0)))
}

/// Blank lines are not entries (and not counted).
fn push(lines: &mut Vec<Vec<u8>>, line: Vec<u8>) {
    if !line.is_empty() {
        lines.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(content: &[u8]) -> (tempfile::NamedTempFile, u64) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        (f, content.len() as u64)
    }

    fn strs(lines: &[Vec<u8>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn last_lines_stop_at_n_and_hold_back_a_partial_line() {
        let (f, end) = file(b"a\nbb\nccc\npartial");
        let (lines, complete) = last_lines(f.as_file(), end, 2).unwrap();
        assert_eq!(strs(&lines), ["bb", "ccc"]);
        assert_eq!(complete, 9);
        let (lines, _) = last_lines(f.as_file(), end, 10).unwrap();
        assert_eq!(strs(&lines), ["a", "bb", "ccc"]);
        let (lines, complete) = last_lines(f.as_file(), end, 0).unwrap();
        assert!(lines.is_empty());
        assert_eq!(complete, 0);
        let (f, end) = file(b"no newline at all");
        assert_eq!(last_lines(f.as_file(), end, 3).unwrap(), (vec![], 0));
        let (f, end) = file(b"");
        assert_eq!(last_lines(f.as_file(), end, 3).unwrap(), (vec![], 0));
    }

    #[test]
    fn lines_spanning_blocks_are_reassembled() {
        let long: Vec<u8> = (0..(3 * BLOCK as usize + 17))
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let mut content = b"first\n".to_vec();
        content.extend_from_slice(&long);
        content.extend_from_slice(b"\nshort\n");
        let (f, end) = file(&content);
        let (lines, complete) = last_lines(f.as_file(), end, 3).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], b"first");
        assert_eq!(lines[1], long);
        assert_eq!(lines[2], b"short");
        assert_eq!(complete, end);
    }
}
