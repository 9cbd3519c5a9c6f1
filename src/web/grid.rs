//! The pages' tables: one shape for every list that says so when it is empty.

use maud::{html, Markup};

/// A table of the pages' grid, `#id`, with its column `headings` and its `rows`; the note `empty`
/// in its place when there are no rows.
pub fn grid(
    id: &str,
    empty: &str,
    headings: Markup,
    rows: impl IntoIterator<Item = Markup>,
) -> Markup {
    let rows: Vec<Markup> = rows.into_iter().collect();
    html! {
        @if rows.is_empty() {
            p.muted { (empty) }
        } @else {
            table.grid id=(id) {
                thead { tr { (headings) } }
                tbody { @for row in &rows { (row) } }
            }
        }
    }
}
