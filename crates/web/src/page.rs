//! The page shell every page shares, and the error pages.
//!
//! Every page is a [`Page`]: a title, the section of the navigation it belongs
//! to, and its body. The shell adds the document head (viewport, stylesheet),
//! a skip link, the navigation for the roles, the search form and the footer,
//! so a page writes only what is its own. A request that cannot be answered
//! is a [`WebError`], rendered in the same shell with its status.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::view::ChainView;
use crate::{STYLESHEET_PATH, Web};

/// The sections of the app, one per role, in navigation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Explorer,
    Datanets,
    Models,
    Playground,
    Earnings,
    Assets,
    Governance,
}

impl Section {
    /// Every section, in navigation order.
    pub const ALL: [Section; 7] = [
        Section::Explorer,
        Section::Datanets,
        Section::Models,
        Section::Playground,
        Section::Earnings,
        Section::Assets,
        Section::Governance,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Section::Explorer => "Explorer",
            Section::Datanets => "Datanets",
            Section::Models => "Models",
            Section::Playground => "Playground",
            Section::Earnings => "Earnings",
            Section::Assets => "Assets",
            Section::Governance => "Governance",
        }
    }

    /// Where the section starts, once it has pages; `None` until then (the
    /// navigation shows its name as plain text).
    pub fn href(self) -> Option<&'static str> {
        match self {
            Section::Explorer => Some("/"),
            Section::Datanets => Some("/datanets"),
            Section::Models => Some("/models/jobs"),
            Section::Playground => Some("/playground"),
            Section::Earnings => Some("/earnings"),
            Section::Assets => Some("/assets"),
            Section::Governance => Some("/governance"),
        }
    }
}

/// One rendered page.
pub struct Page {
    pub title: String,
    pub section: Section,
    pub body: Markup,
    /// Seconds after which a browser without scripts reloads the page (`<meta http-equiv="refresh">`
    /// in `<noscript>`), for a page that watches something still changing; `None` for every other page.
    pub refresh: Option<u32>,
}

impl Page {
    pub fn new(title: impl Into<String>, section: Section, body: Markup) -> Page {
        Page { title: title.into(), section, body, refresh: None }
    }

    /// The page, reloading itself every `seconds`.
    pub fn refreshing(self, seconds: u32) -> Page {
        Page { refresh: Some(seconds), ..self }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        Html(shell(&self.title, Some(self.section), self.body, self.refresh).into_string()).into_response()
    }
}

/// The document around a page's body.
fn shell(title: &str, current: Option<Section>, body: Markup, refresh: Option<u32>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // A page that watches something reloads without a script; its script, if any, updates it in place.
                @if let Some(s) = refresh { noscript { meta http-equiv="refresh" content=(s); } }
                title { (title) " · OpenLedger" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    a.brand href="/" { "OpenLedger" }
                    nav aria-label="Sections" {
                        ul {
                            @for s in Section::ALL {
                                li {
                                    @match (s.href(), Some(s) == current) {
                                        (Some(href), true) => a href=(href) aria-current="page" { (s.label()) },
                                        (Some(href), false) => a href=(href) { (s.label()) },
                                        (None, _) => span.soon title="Not built yet" { (s.label()) },
                                    }
                                }
                            }
                        }
                    }
                    form.search role="search" method="get" action="/explorer/search" {
                        label for="q" { "Search" }
                        input #q type="search" name="q" maxlength=(crate::query::MAX_VALUE)
                            placeholder="Block, tx hash, address, m<id>, d<id>";
                        button type="submit" { "Go" }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                footer.site { "OpenLedger node · pages rendered on the server; only the Playground's chat and the pages that sign need a script" }
            }
        }
    }
}

/// A table that scrolls sideways on a narrow screen: its caption (for
/// screen readers; the heading above it names it for everyone), a header row
/// of `columns`, and the rows of `body`.
pub fn table(caption: &str, columns: &[&str], body: Markup) -> Markup {
    html! {
        div.scroll { table {
            caption.visually-hidden { (caption) }
            thead { tr { @for c in columns { th scope="col" { (c) } } } }
            tbody { (body) }
        } }
    }
}

/// Why a page cannot be shown. Bad input is the browser's fault (400), a
/// missing thing is 404, a storage failure is 503; none of them panics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebError {
    BadRequest(String),
    NotFound(String),
    Unavailable(String),
}

impl WebError {
    pub fn bad(msg: impl Into<String>) -> WebError {
        WebError::BadRequest(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> WebError {
        WebError::NotFound(msg.into())
    }
    pub fn unavailable(e: impl std::fmt::Display) -> WebError {
        WebError::Unavailable(e.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, msg) = match self {
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m),
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            WebError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable", m),
        };
        let body = html! {
            p.error role="alert" { (msg) }
            p { a href="/" { "Back to the Explorer" } }
        };
        (status, Html(shell(title, None, body, None).into_string())).into_response()
    }
}

/// Run `page` on a blocking thread (storage reads block) against a fresh
/// snapshot of the chain, and answer with what it returns or its error page.
pub async fn render<R, F>(web: Web, page: F) -> Response
where
    R: IntoResponse + Send + 'static,
    F: FnOnce(&ChainView) -> Result<R, WebError> + Send + 'static,
{
    let result = tokio::task::spawn_blocking(move || {
        let view = ChainView::open(&web.chain)?.with_dev_wallet(web.writes.dev_wallet.clone());
        page(&view)
    })
    .await;
    match result {
        Ok(Ok(r)) => r.into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => WebError::unavailable(format!("the page could not be rendered: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_a_caption_and_column_headers() {
        let t = table("Jobs", &["Id", "State"], html! { tr { td { "1" } td { "ok" } } }).into_string();
        assert_eq!(
            t,
            "<div class=\"scroll\"><table><caption class=\"visually-hidden\">Jobs</caption><thead><tr>\
             <th scope=\"col\">Id</th><th scope=\"col\">State</th></tr></thead><tbody><tr><td>1</td><td>ok</td>\
             </tr></tbody></table></div>"
        );
    }

    #[test]
    fn only_a_refreshing_page_reloads() {
        let page = |p: Page| shell(&p.title, Some(p.section), p.body, p.refresh).into_string();
        let still = page(Page::new("Job", Section::Models, html! {}));
        assert!(!still.contains("http-equiv"));
        let live = page(Page::new("Job", Section::Models, html! {}).refreshing(5));
        assert!(live.contains("<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>"), "{live}");
        // The sections with pages are links; the current one is marked.
        assert!(live.contains("<a href=\"/models/jobs\" aria-current=\"page\">Models</a>"), "{live}");
        assert!(live.contains("<a href=\"/earnings\">Earnings</a>"), "{live}");
    }
}
