//! `GET /objects/{key}`: the object's exact bytes from Redis, else S3 (then cached).

use lambda_http::{Body, Request, Response};
use use_cases::ObjectState;

use crate::http::Answer;
use crate::{ApiError, App};

/// The object, with its content type and `X-Cache`; a 404 and a 413 (too large to serve) are
/// cached too.
pub(crate) async fn get(app: &App, key: &str, req: &Request) -> Result<Answer, ApiError> {
    let clients = app.clients();
    let lookup = clients.get_object(key, app.read(req, "s3")?).await?;
    let object = match lookup.object {
        ObjectState::Found(object) => object,
        ObjectState::Missing => {
            let response = ApiError::object_not_found(key).into_response();
            return Ok(Answer::cached(response, lookup.state));
        }
        ObjectState::TooLarge { size } => {
            let response = ApiError::object_too_large(key, size, clients.max_object_bytes()).into_response();
            return Ok(Answer::cached(response, lookup.state));
        }
    };
    let mut builder = Response::builder()
        .status(200)
        .header("content-length", object.bytes.len())
        // Bytes from the bucket are data, never a page of this API's origin: no sniffing, and
        // a sandbox with nothing allowed should a browser render them anyway.
        .header("x-content-type-options", "nosniff")
        .header("content-security-policy", "default-src 'none'; sandbox");
    if runs_in_a_browser(&object.content_type) {
        builder = builder.header("content-disposition", "attachment");
    }
    builder = builder.header("content-type", object.content_type);
    if !lookup.cached {
        builder = builder.header("x-cache-skipped", "too-large");
    }
    let response = builder
        .body(Body::Binary(object.bytes))
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Answer::cached(response, lookup.state))
}

/// Whether a browser would run content of this type (HTML, SVG, XML, JavaScript): such objects
/// are served as downloads, so a stored file cannot script the API's origin.
fn runs_in_a_browser(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "text/html"
            | "application/xhtml+xml"
            | "text/xml"
            | "application/xml"
            | "text/xsl"
            | "text/javascript"
            | "application/javascript"
            | "application/x-javascript"
            | "text/ecmascript"
            | "application/ecmascript"
            | "application/pdf"
            | "multipart/x-mixed-replace"
            | ""
    ) || essence.ends_with("+xml")
}

#[cfg(test)]
mod tests {
    use super::runs_in_a_browser;

    #[test]
    fn active_types_are_downloads_and_plain_data_is_not() {
        for active in [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            "image/svg+xml",
            "application/xml",
            "text/javascript",
            "",
        ] {
            assert!(runs_in_a_browser(active), "{active}");
        }
        for inert in [
            "text/plain",
            "application/json",
            "image/png",
            "application/octet-stream",
        ] {
            assert!(!runs_in_a_browser(inert), "{inert}");
        }
    }
}
