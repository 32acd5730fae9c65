//! CSV export. `GET /merchant/export` shows one form per dataset (a date range in Japan
//! time, and "for Excel", which adds a byte-order mark so Excel reads UTF-8 Japanese
//! right); `GET /merchant/export/{dataset}.csv?from=YYYY-MM-DD&to=YYYY-MM-DD&bom=1` is
//! the file.
//!
//! The file is streamed with constant memory: rows come from PostgreSQL as a stream (see
//! `store/export.rs`), a task turns them into ~64 KiB CSV chunks and sends them over a
//! bounded channel to the response body. When the client reads slowly the channel fills,
//! the task waits, and so does PostgreSQL: nothing is buffered beyond a few chunks.

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

use super::{field_errors, Console};
use crate::domain::merchant::Permission;
use crate::store::{Cell, Dataset, ExportRange, ExportRows};
use crate::web::error::{AppError, AppResult};
use crate::web::pages::jst;
use crate::web::AppState;

/// A chunk is sent once it holds this much CSV.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the client at most; beyond that the reader waits.
const CHUNKS_IN_FLIGHT: usize = 4;
/// Each export holds a database connection for as long as its download lasts, so a few
/// slow downloads must not take the whole pool from the node's other requests.
static EXPORTS_AT_ONCE: Semaphore = Semaphore::const_new(4);
const WAIT_FOR_A_SLOT: Duration = Duration::from_secs(10);

/// Cells that spreadsheets would run as a formula get a leading `'` (OWASP's advice
/// against CSV injection): a customer's name must never become a command.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Who may export what: users and the audit log show accounts, so they need the right to
/// manage users too.
fn permissions(dataset: Dataset) -> &'static [Permission] {
    match dataset {
        Dataset::Users | Dataset::Audit => &[Permission::Export, Permission::ManageUsers],
        _ => &[Permission::Export],
    }
}

fn allowed(console: &Console, dataset: Dataset) -> bool {
    permissions(dataset).iter().all(|p| console.can(*p))
}

#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    bom: Option<String>,
}

/// `GET /merchant/export`
pub async fn index(console: Console, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    console.require(Permission::Export)?;
    export_page(&console, &state, StatusCode::OK, None)
}

/// The page; `failed` re-shows one dataset's form with what was typed and its problems.
fn export_page(
    console: &Console,
    state: &AppState,
    status: StatusCode,
    failed: Option<(Dataset, &ExportQuery, Value)>,
) -> AppResult<HttpResponse> {
    let datasets: Vec<Value> = Dataset::ALL
        .into_iter()
        .filter(|d| allowed(console, *d))
        .map(|d| {
            let name = d.as_str();
            let mut form = json!({
                "name": name,
                "label": console.t(&format!("console.export.{name}")),
                "help": console.t(&format!("console.export.{name}_help")),
                "from": "", "to": "", "bom": true, "errors": {},
            });
            if let Some((_, query, errors)) = failed.as_ref().filter(|(f, _, _)| *f == d) {
                form["from"] = json!(query.from.as_deref().unwrap_or_default());
                form["to"] = json!(query.to.as_deref().unwrap_or_default());
                form["bom"] = json!(query.bom.as_deref() == Some("1"));
                form["errors"] = errors.clone();
            }
            form
        })
        .collect();
    console.render_status(
        state,
        status,
        "merchant_export",
        json!({
            "title": console.t("console.export.title"),
            "datasets": datasets,
            "error_code": failed.is_some().then_some("invalid_date"),
        }),
    )
}

/// A date as `<input type="date">` sends it; blank means no limit on that side.
fn parse_date(raw: Option<&str>) -> Result<Option<NaiveDate>, ()> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.len() == 10 => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// The start of `date` in Japan, as an instant.
fn jst_midnight(date: NaiveDate) -> Option<DateTime<Utc>> {
    jst()
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// What was asked for, checked: the range (both days included) and each field's problem.
struct Dates {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    range: ExportRange,
}

fn check_dates(console: &Console, q: &ExportQuery) -> Result<Dates, Vec<(&'static str, String)>> {
    let bad = || console.t("console.export.invalid_date");
    let from = parse_date(q.from.as_deref());
    let to = parse_date(q.to.as_deref());
    let mut errors = Vec::new();
    let range_from = match from {
        Ok(Some(d)) => match jst_midnight(d) {
            Some(t) => Some(t),
            None => {
                errors.push(("from", bad()));
                None
            }
        },
        Ok(None) => None,
        Err(()) => {
            errors.push(("from", bad()));
            None
        }
    };
    // `to` is a whole day: the range ends at the next midnight.
    let until = match to {
        Ok(Some(d)) => match d.succ_opt().and_then(jst_midnight) {
            Some(t) => Some(t),
            None => {
                errors.push(("to", bad()));
                None
            }
        },
        Ok(None) => None,
        Err(()) => {
            errors.push(("to", bad()));
            None
        }
    };
    if let (Ok(Some(f)), Ok(Some(t))) = (from, to) {
        if t < f {
            errors.push(("to", console.t("console.export.to_before_from")));
        }
    }
    match (errors.is_empty(), from, to) {
        (true, Ok(from), Ok(to)) => Ok(Dates {
            from,
            to,
            range: ExportRange {
                from: range_from,
                until,
            },
        }),
        _ => Err(errors),
    }
}

/// `ecoupon-redemptions-2026-11-01-2026-11-30.csv`; open ends are left out.
fn file_name(dataset: Dataset, from: Option<NaiveDate>, to: Option<NaiveDate>) -> String {
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let range = match (from, to) {
        (Some(f), Some(t)) => format!("-{}-{}", day(f), day(t)),
        (Some(f), None) => format!("-from-{}", day(f)),
        (None, Some(t)) => format!("-to-{}", day(t)),
        (None, None) => String::new(),
    };
    format!("ecoupon-{}{range}.csv", dataset.as_str())
}

fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// `GET /merchant/export/{dataset}.csv`
pub async fn download(
    req: HttpRequest,
    console: Console,
    state: web::Data<AppState>,
    dataset: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> AppResult<HttpResponse> {
    console.require(Permission::Export)?;
    let dataset = Dataset::parse(&dataset).ok_or_else(|| AppError::not_found("dataset"))?;
    for p in permissions(dataset) {
        console.require(*p)?;
    }
    let dates = match check_dates(&console, &query) {
        Ok(dates) => dates,
        // A browser sees the form again with the message next to the field; a script
        // gets the JSON error.
        Err(errors) if wants_html(&req) => {
            return export_page(
                &console,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some((dataset, &query, field_errors(&errors))),
            )
        }
        Err(errors) => {
            let text: Vec<_> = errors.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Err(AppError::invalid("invalid_date", text.join(" ")));
        }
    };
    let bom = query.bom.as_deref() == Some("1");
    let permit = tokio::time::timeout(WAIT_FOR_A_SLOT, EXPORTS_AT_ONCE.acquire())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| AppError::busy(5))?;
    let rows = state
        .store
        .export_rows(
            console.user.tenant_id,
            dataset,
            dates.range,
            &state.settings.public_url(),
        )
        .await?;
    let day = |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
    console
        .audit(
            &state,
            "export.download",
            dataset.as_str(),
            json!({"dataset": dataset.as_str(), "from": day(dates.from), "to": day(dates.to), "bom": bom}),
        )
        .await?;
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    actix_web::rt::spawn(async move {
        pump(rows, dataset, bom, tx).await;
        drop(permit);
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file_name(dataset, dates.from, dates.to)
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body))
}

/// Reads every row into CSV chunks and sends them; stops as soon as the client has gone
/// (the send fails), which drops `rows` and with it the query.
async fn pump(
    mut rows: ExportRows,
    dataset: Dataset,
    bom: bool,
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
) {
    let fail = |e: &dyn std::fmt::Display| {
        tracing::error!(dataset = dataset.as_str(), error = %e, "export failed part way");
        // An error ends the response abruptly, so the file is not mistaken for complete.
        Err(io::Error::other("export failed"))
    };
    let mut csv = match CsvChunks::new(dataset, bom) {
        Ok(csv) => csv,
        Err(e) => {
            let _ = tx.send(fail(&e)).await;
            return;
        }
    };
    while let Some(row) = rows.next().await {
        let chunk = match row {
            Ok(cells) => csv.row(&cells),
            Err(e) => {
                let _ = tx.send(fail(&e)).await;
                return;
            }
        };
        match chunk {
            Ok(None) => {}
            Ok(Some(bytes)) => {
                if tx.send(Ok(bytes)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(fail(&e)).await;
                return;
            }
        }
    }
    if let Err(e) = rows.finish().await {
        let _ = tx.send(fail(&e)).await;
        return;
    }
    match csv.finish() {
        Ok(last) if last.is_empty() => {}
        Ok(last) => {
            let _ = tx.send(Ok(last)).await;
        }
        Err(e) => {
            let _ = tx.send(fail(&e)).await;
        }
    }
}

/// RFC 4180 CSV (CRLF line ends, quotes where needed), handed out in chunks.
struct CsvChunks {
    /// Always Some between calls; a full chunk is taken out with `into_inner` and a new
    /// writer started (the csv crate lends its buffer only by value).
    writer: Option<csv::Writer<Vec<u8>>>,
}

fn writer(buf: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .has_headers(false)
        .from_writer(buf)
}

fn buffer() -> Vec<u8> {
    Vec::with_capacity(CHUNK + 8 * 1024)
}

impl CsvChunks {
    fn new(dataset: Dataset, bom: bool) -> io::Result<CsvChunks> {
        let mut buf = buffer();
        if bom {
            buf.extend_from_slice("\u{feff}".as_bytes());
        }
        let mut w = writer(buf);
        w.write_record(dataset.columns())?;
        Ok(CsvChunks { writer: Some(w) })
    }

    fn take(&mut self) -> io::Result<Vec<u8>> {
        let w = self
            .writer
            .take()
            .ok_or_else(|| io::Error::other("CSV writer used after an error"))?;
        w.into_inner().map_err(|e| io::Error::other(e.to_string()))
    }

    /// Adds a row; returns a chunk once enough has gathered.
    fn row(&mut self, cells: &[Cell]) -> io::Result<Option<Bytes>> {
        let w = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("CSV writer used after an error"))?;
        w.write_record(cells.iter().map(|c| match field(c) {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        }))?;
        // Rows wait in the writer's own small buffer; flushing moves them into ours.
        w.flush()?;
        if w.get_ref().len() < CHUNK {
            return Ok(None);
        }
        let full = self.take()?;
        self.writer = Some(writer(buffer()));
        Ok(Some(Bytes::from(full)))
    }

    /// What is left after the last row.
    fn finish(mut self) -> io::Result<Bytes> {
        Ok(Bytes::from(self.take()?))
    }
}

/// One cell as text: times in Japan time with their offset, text made formula-safe.
fn field(cell: &Cell) -> Cow<'_, str> {
    match cell {
        Cell::Text(s) if s.starts_with(FORMULA_STARTS) => Cow::Owned(format!("'{s}")),
        Cell::Text(s) => Cow::Borrowed(s),
        Cell::Int(n) => Cow::Owned(n.to_string()),
        Cell::Float(f) => Cow::Owned(f.to_string()),
        Cell::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Cell::Time(t) => Cow::Owned(
            t.with_timezone(&jst())
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
        ),
        Cell::Id(id) => Cow::Owned(id.to_string()),
        Cell::Empty => Cow::Borrowed(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_formula_safe_and_times_japanese() {
        let text = |s: &str| field(&Cell::Text(s.into())).into_owned();
        for bad in ["=1+2", "+81", "-3", "@SUM(A1)", "\tx", "\r=x"] {
            assert_eq!(text(bad), format!("'{bad}"));
        }
        assert_eq!(text("カフェ=桜"), "カフェ=桜");
        assert_eq!(field(&Cell::Int(-3)), "-3");
        let at = DateTime::parse_from_rfc3339("2026-11-30T15:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(field(&Cell::Time(at)), "2026-12-01T00:30:00+09:00");
    }

    #[test]
    fn chunks_are_rfc4180_with_an_optional_bom() {
        let mut csv = CsvChunks::new(Dataset::Audit, true).unwrap();
        let row = [
            Cell::Int(1),
            Cell::Empty,
            Cell::Text("a \"quoted\", name".into()),
            Cell::Text("two\nlines".into()),
            Cell::Bool(true),
            Cell::Float(0.5),
            Cell::Text("{}".into()),
        ];
        assert!(csv.row(&row).unwrap().is_none());
        let out = String::from_utf8(csv.finish().unwrap().to_vec()).unwrap();
        assert_eq!(
            out,
            "\u{feff}id,at,actor,action,target,ip,detail\r\n\
             1,,\"a \"\"quoted\"\", name\",\"two\nlines\",true,0.5,{}\r\n"
        );
        let csv = CsvChunks::new(Dataset::Users, false).unwrap();
        assert!(csv.finish().unwrap().starts_with(b"id,email,"));
    }

    #[test]
    fn big_exports_come_in_chunks() {
        let mut csv = CsvChunks::new(Dataset::Users, false).unwrap();
        let row: Vec<Cell> = (0..7).map(|_| Cell::Text("x".repeat(1000))).collect();
        let chunks: Vec<_> = (0..200).filter_map(|_| csv.row(&row).unwrap()).collect();
        assert!(chunks.len() >= 2);
        assert!(chunks
            .iter()
            .all(|c| c.len() >= CHUNK && c.len() < CHUNK + 8 * 1024));
    }

    #[test]
    fn dates_are_japanese_days_and_name_the_file() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(parse_date(Some("2026-11-01")), Ok(Some(d("2026-11-01"))));
        assert_eq!(parse_date(Some(" ")), Ok(None));
        assert_eq!(parse_date(None), Ok(None));
        for bad in [
            "2026-13-01",
            "2026-1-1",
            "yesterday",
            "2026-11-01T00:00",
            "+12026-11-01",
        ] {
            assert_eq!(parse_date(Some(bad)), Err(()), "{bad}");
        }
        let start = jst_midnight(d("2026-11-01")).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-10-31T15:00:00+00:00");
        assert_eq!(
            file_name(
                Dataset::Redemptions,
                Some(d("2026-11-01")),
                Some(d("2026-11-30"))
            ),
            "ecoupon-redemptions-2026-11-01-2026-11-30.csv"
        );
        assert_eq!(
            file_name(Dataset::Coupons, None, None),
            "ecoupon-coupons.csv"
        );
    }
}
