//! `GET /objects/{key}`: the object's exact bytes from Redis, else S3 (then cached).

use lambda_http::{Body, Request, Response};
use use_cases::Clients;

use crate::http::{read_mode, with_cache_state};
use crate::ApiError;

/// The object, with its content type and `X-Cache`; a 404 is cached too (negative entry).
pub(crate) async fn get(clients: &Clients, key: &str, req: &Request) -> Result<Response<Body>, ApiError> {
    let lookup = clients.get_object(key, read_mode(req, "s3")?).await?;
    let Some(object) = lookup.object else {
        return Ok(with_cache_state(
            ApiError::object_not_found(key).into_response(),
            lookup.state,
        ));
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
