//! Who is writing: the caller identity API Gateway put in the request context after its
//! authorizer accepted the request. Reviews need one (`REVIEWS_AUTH`), and the author of a
//! review is taken from it, never from the body.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use service_config::ReviewsAuth;

/// The author `req` writes as under `auth`: `Ok(None)` when no identity is required (`none`:
/// the body names the author), `Ok(Some(name))` from the identity, `Err(())` when the identity
/// `auth` asks for is not in the request context.
///
/// The authorizer in front of the route already refused unauthenticated callers; this check
/// is the defence in depth behind it (a route deployed without its authorizer, a Function URL,
/// a direct invoke).
pub(crate) fn author(req: &Request, auth: ReviewsAuth) -> Result<Option<String>, ()> {
    match auth {
        ReviewsAuth::None => Ok(None),
        ReviewsAuth::Jwt => jwt_author(req).map(Some).ok_or(()),
        ReviewsAuth::Iam => iam_caller(req).map(Some).ok_or(()),
    }
}

/// The JWT's `cognito:username` (ID tokens), else `username` (access tokens), else `sub`, as
/// the HTTP API's JWT authorizer passed them.
fn jwt_author(req: &Request) -> Option<String> {
    let claims = match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => &c.authorizer.as_ref()?.jwt.as_ref()?.claims,
        RequestContext::ApiGatewayV1(c) => &c.authorizer.jwt.as_ref()?.claims,
        _ => return None,
    };
    ["cognito:username", "username", "sub"]
        .iter()
        .find_map(|claim| claims.get(*claim).filter(|v| !v.trim().is_empty()))
        .cloned()
}

/// The ARN of the IAM caller whose SigV4 signature API Gateway verified.
fn iam_caller(req: &Request) -> Option<String> {
    let arn = match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => c.authorizer.as_ref()?.iam.as_ref()?.user_arn.clone(),
        RequestContext::ApiGatewayV1(c) => c.identity.user_arn.clone(),
        _ => None,
    }?;
    Some(arn).filter(|a| a.starts_with("arn:"))
}
