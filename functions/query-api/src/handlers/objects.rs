//! `GET /objects/{key}`: the object's exact bytes from Redis, else S3 (then cached).

use cache_aside::ObjectState;
use lambda_http::{Body, Request, Response};

use crate::http::with_cache_state;
use crate::{ApiError, App};

/// The object, with its content type and `X-Cache`; a 404 and a 413 (too large to serve) are
/// cached too.
pub(crate) async fn get(app: &App, key: &str, req: &Request) -> Result<Response<Body>, ApiError> {
    let clients = app.clients();
    let lookup = clients.get_object(key, app.read(req, "s3")?).await?;
    let object = match lookup.object {
        ObjectState::Found(object) => object,
        ObjectState::Missing => {
            let response = ApiError::object_not_found(key).into_response();
            return Ok(with_cache_state(response, lookup.state));
        }
        ObjectState::TooLarge { size } => {
            let response = ApiError::object_too_large(key, size, clients.max_object_bytes).into_response();
            return Ok(with_cache_state(response, lookup.state));
        }
    };
    let mut builder = Response::builder()
        .status(200)
        .header("content-type", object.content_type)
        .header("content-length", object.bytes.len());
    if !lookup.cached {
        builder = builder.header("x-cache-skipped", "too-large");
    }
    let response = builder
        .body(Body::Binary(object.bytes))
        .map_err(|e| ApiError::internal(&e))?;
    Ok(with_cache_state(response, lookup.state))
}
