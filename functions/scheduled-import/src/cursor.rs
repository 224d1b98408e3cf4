//! How an incremental import moves through a resource: pure, so every case is a unit test.
//!
//! Xero's `If-Modified-Since` is to the second and includes it, lists oldest change first, and
//! may make a record visible slightly after the UpdatedDateUTC it carries. A record can only
//! have been missed if it carries a time within [`Paging::overlap`] of when we last read, so
//! each request asks for changes since the newest one delivered, or since that read less the
//! overlap when that is earlier. What was delivered inside that window is remembered
//! (`{time}|{id}` in [`ImportCursor::boundary`]) and not delivered again, while a record that
//! turned up late is. Page numbers are used only while a whole page lies inside the window
//! (more changes in it than a page holds): paging by number across changing data skips records,
//! since one edited moves to the end.

use chrono::{DateTime, Duration, Utc};
use xero_sync_domain::model::ImportCursor;
use xero_sync_domain::time;

/// Entries remembered in the window: beyond this (thousands of changes within the overlap)
/// the oldest are forgotten and may be delivered again, with the same event ids.
pub const MAX_SEEN: usize = 2000;

#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page_size: u32,
    pub overlap: Duration,
}

/// One record of a page as the cursor sees it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    /// `None` when the record's UpdatedDateUTC does not read; it is delivered (and reported).
    pub updated: Option<DateTime<Utc>>,
}

fn seen_entry(updated: DateTime<Utc>, id: &str) -> String {
    format!("{}|{id}", time::format(updated))
}

/// Where a run's first request starts: the newest change delivered, or, if earlier, the first
/// read of the last run less the overlap (a record stamped shortly before that read may have
/// been invisible to it). Later requests of a run start at the newest change.
fn window_start(cursor: &ImportCursor, paging: &Paging) -> Option<DateTime<Utc>> {
    let since = cursor.modified_since?;
    // A cursor kept before reads were timed: take the read to have been at the newest change.
    let read_at = cursor.read_at.unwrap_or(since);
    Some(since.min(read_at - paging.overlap))
}

/// What `If-Modified-Since` to ask with, and which page: where a run in progress stands, or,
/// starting a run, [`window_start`].
pub fn request(cursor: &ImportCursor, paging: &Paging) -> (Option<DateTime<Utc>>, u32) {
    match cursor.paging_from {
        Some(from) => (Some(from), cursor.next_page.unwrap_or(1)),
        None => (window_start(cursor, paging), cursor.next_page.unwrap_or(1)),
    }
}

/// Whether each record of a page asked for `since` is news: not older than the request meant
/// (Xero's filter is to the second, ours to the microsecond) and not delivered before at this
/// UpdatedDateUTC.
pub fn fresh(cursor: &ImportCursor, items: &[Listed], since: Option<DateTime<Utc>>) -> Vec<bool> {
    items
        .iter()
        .map(|item| match item.updated {
            Some(updated) if since.is_some_and(|since| updated < since) => false,
            Some(updated) => {
                let entry = seen_entry(updated, &item.id);
                // An entry without a time was kept by older runs for the boundary instant.
                let at_boundary = cursor.modified_since == Some(updated) && cursor.boundary.contains(&item.id);
                !cursor.boundary.contains(&entry) && !at_boundary
            }
            None => true,
        })
        .collect()
}

/// Notes records as delivered, so that listed again inside the window they are not news.
pub fn remember(cursor: &mut ImportCursor, items: &[Listed]) {
    // Old entries were plain ids at the boundary instant: give them their time.
    if let Some(at) = cursor.modified_since {
        for entry in cursor.boundary.iter_mut().filter(|e| !e.contains('|')) {
            *entry = seen_entry(at, entry);
        }
    }
    for item in items {
        if let Some(updated) = item.updated {
            let entry = seen_entry(updated, &item.id);
            if !cursor.boundary.contains(&entry) {
                cursor.boundary.push(entry);
            }
        }
    }
}

/// Moves the cursor past a page asked for `since` (as [`request`] said) once its news was
/// delivered; `run_began` is when this run first read. Returns whether there is more to read.
pub fn advance(
    cursor: &mut ImportCursor,
    items: &[Listed],
    since: Option<DateTime<Utc>>,
    paging: &Paging,
    run_began: DateTime<Utc>,
) -> bool {
    let in_progress = cursor.paging_from.is_some() || cursor.next_page.is_some();
    let page = cursor.next_page.unwrap_or(1);
    let full = items.len() >= paging.page_size as usize;
    let newest = items.iter().filter_map(|i| i.updated).max();
    remember(cursor, items);
    if let Some(newest) = newest {
        cursor.modified_since = Some(cursor.modified_since.map_or(newest, |s| s.max(newest)));
    }
    // The earliest read of a run (one resumed after a crash included) is what the next run
    // reaches back from.
    cursor.read_at = Some(match (in_progress, cursor.read_at) {
        (true, Some(read)) => read.min(run_began),
        _ => run_began,
    });
    let moved_past = newest.filter(|newest| since.is_none_or(|since| *newest > since));
    match (full, moved_past) {
        (false, _) => {
            cursor.paging_from = None;
            cursor.next_page = None;
        }
        // On from the newest record of this page, not from the newest ever delivered: a page
        // inside the window that reaches back is followed through the whole window.
        (true, Some(newest)) => {
            cursor.paging_from = Some(newest);
            cursor.next_page = None;
        }
        // A whole page at one instant (or none readable): only page numbers get past it.
        (true, None) => {
            cursor.paging_from = since;
            cursor.next_page = Some(page + 1);
        }
    }
    let next_run = window_start(cursor, paging);
    let keep_from = match (cursor.paging_from, next_run) {
        (Some(from), Some(next)) => Some(from.min(next)),
        (from, next) => from.or(next),
    };
    if let Some(keep_from) = keep_from {
        let keep_from = time::format(keep_from);
        cursor.boundary.retain(|entry| entry.as_str() >= keep_from.as_str());
        cursor.boundary.sort();
        let excess = cursor.boundary.len().saturating_sub(MAX_SEEN);
        cursor.boundary.drain(..excess);
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGING: Paging = Paging { page_size: 3, overlap: Duration::seconds(5) };

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn listed(items: &[(&str, i64)]) -> Vec<Listed> {
        items.iter().map(|(id, at)| Listed { id: (*id).into(), updated: Some(t(*at)) }).collect()
    }

    fn cursor() -> ImportCursor {
        ImportCursor::new("contacts", t(0))
    }

    fn step(c: &mut ImportCursor, items: &[Listed], run_began: i64) -> bool {
        let (since, _) = request(c, &PAGING);
        advance(c, items, since, &PAGING, t(run_began))
    }

    fn at_ms(id: &str, seconds: i64, millis: i64) -> Listed {
        Listed { id: id.into(), updated: Some(t(seconds) + Duration::milliseconds(millis)) }
    }

    #[test]
    fn a_run_starts_by_reaching_back_over_what_may_have_turned_up_late() {
        let mut c = cursor();
        assert_eq!(request(&c, &PAGING), (None, 1));
        let first = listed(&[("a", 10), ("b", 12)]);
        assert_eq!(fresh(&c, &first, None), [true, true]);
        assert!(!step(&mut c, &first, 13));
        let (since, page) = request(&c, &PAGING);
        assert_eq!((since, page), (Some(t(8)), 1), "read at 13: from 13 - 5");
        // Xero lists a and b again (inside the overlap) and c, which became visible late.
        let again = listed(&[("c", 9), ("a", 10), ("b", 12)]);
        assert_eq!(fresh(&c, &again, since), [true, false, false]);
        step(&mut c, &again, 100);
        assert_eq!(c.modified_since, Some(t(12)));
        assert_eq!(request(&c, &PAGING), (Some(t(12)), 1), "read long after: all before was visible");
        // A change to a seen record is news again.
        assert_eq!(fresh(&c, &listed(&[("a", 13)]), Some(t(12))), [true]);
    }

    #[test]
    fn what_xeros_whole_second_filter_lists_again_from_before_the_window_is_no_news() {
        let mut c = cursor();
        let page = [at_ms("a", 12, 100), at_ms("b", 12, 345)];
        assert!(!step(&mut c, &page, 100));
        let (since, _) = request(&c, &PAGING);
        assert_eq!(since, Some(t(12) + Duration::milliseconds(345)));
        // Asked from 12.345, Xero answers from 12 (to the second) and lists a again.
        assert_eq!(fresh(&c, &page, since), [false, false]);
        step(&mut c, &page, 200);
        assert_eq!(fresh(&c, &page, request(&c, &PAGING).0), [false, false], "never again");
    }

    #[test]
    fn a_full_page_follows_on_from_its_newest_record_through_the_whole_window() {
        let mut c = cursor();
        assert!(!step(&mut c, &listed(&[("z", 30)]), 31));
        // The next run reaches back to 26, where more changed than a page holds.
        let (since, _) = request(&c, &PAGING);
        assert_eq!(since, Some(t(26)));
        assert!(step(&mut c, &listed(&[("a", 26), ("b", 27), ("c", 28)]), 40));
        assert_eq!(request(&c, &PAGING), (Some(t(28)), 1), "on from the page, not from 30");
        assert!(!step(&mut c, &listed(&[("c", 28), ("d", 29)]), 40));
        assert_eq!((c.modified_since, c.paging_from, c.next_page), (Some(t(30)), None, None));
        assert_eq!(request(&c, &PAGING), (Some(t(30)), 1), "read at 40: from 35 or the newest change");
    }

    #[test]
    fn a_full_page_all_at_one_instant_pages_by_number_in_the_same_query() {
        let mut c = cursor();
        assert!(step(&mut c, &listed(&[("a", 20), ("b", 20), ("c", 21)]), 30));
        let (since, page) = request(&c, &PAGING);
        assert_eq!((since, page), (Some(t(21)), 1));
        let crowd = listed(&[("c", 21), ("d", 21), ("e", 21)]);
        assert_eq!(fresh(&c, &crowd, since), [false, true, true]);
        assert!(advance(&mut c, &crowd, since, &PAGING, t(30)));
        assert_eq!(request(&c, &PAGING), (Some(t(21)), 2), "nothing newer than 21: page 2 of the same query");
        assert!(!step(&mut c, &listed(&[("f", 22)]), 30));
        assert_eq!((c.modified_since, c.next_page, c.paging_from), (Some(t(22)), None, None));
    }

    #[test]
    fn entries_older_than_the_window_are_forgotten_and_old_plain_ids_keep_their_meaning() {
        let mut c = cursor();
        c.modified_since = Some(t(30));
        c.boundary = vec!["x".into()];
        assert_eq!(fresh(&c, &listed(&[("x", 30), ("y", 30)]), Some(t(30))), [false, true]);
        step(&mut c, &listed(&[("z", 40)]), 100);
        assert_eq!(c.boundary, vec![seen_entry(t(40), "z")], "x at 30 is outside the next window");
    }
}
