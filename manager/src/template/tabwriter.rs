//! Column alignment as docker's tables do it: Go's text/tabwriter with minimum width 10,
//! padding 3 and spaces (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)` in docker's formatter).

const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// Aligns tab-terminated cells. A cell is text followed by a tab; the text after a line's
/// last tab is not a cell and is printed as is. A column's width is set per block of
/// consecutive lines that have that cell, as Go's tabwriter does.
pub fn align_tabs(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    // widths[line][col] for every tab-terminated cell.
    let mut widths: Vec<Vec<usize>> = lines
        .iter()
        .map(|cells| vec![0; cells.len().saturating_sub(1)])
        .collect();
    let max_cols = widths.iter().map(Vec::len).max().unwrap_or(0);
    for col in 0..max_cols {
        let mut line = 0;
        while line < lines.len() {
            if widths[line].len() <= col {
                line += 1;
                continue;
            }
            let start = line;
            let mut w = MIN_WIDTH;
            while line < lines.len() && widths[line].len() > col {
                w = w.max(lines[line][col].chars().count() + PADDING);
                line += 1;
            }
            for row in &mut widths[start..line] {
                row[col] = w;
            }
        }
    }
    let mut out = String::new();
    for (i, cells) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for (col, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if let Some(&w) = widths[i].get(col) {
                out.push_str(&" ".repeat(w - cell.chars().count()));
            }
        }
    }
    out
}
