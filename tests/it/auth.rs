use crate::helpers::{error_body, spawn_app, spawn_app_with};

#[tokio::test]
async fn api_without_a_token_is_401_in_the_error_shape() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let (code, _) = error_body(response).await;
    assert_eq!(code, "unauthorized");
}

#[tokio::test]
async fn a_wrong_token_or_scheme_is_rejected() {
    let app = spawn_app().await;
    let wrong = format!("{}x", app.token);
    let cases = [
        format!("Bearer {wrong}"),
        format!("Basic {}", app.token),
        "Bearer".to_string(),
        format!("Bearer {}", &app.token[..app.token.len() - 1]),
    ];
    for header in cases {
        let response = app
            .client
            .get(app.url("/api/v1/health"))
            .header("authorization", &header)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{header}");
        error_body(response).await;
    }
}

#[tokio::test]
async fn the_right_token_is_accepted_and_unknown_api_routes_need_it_too() {
    let app = spawn_app().await;
    assert_eq!(app.get_authed("/api/v1/health").await.status(), 200);
    // Route existence is not revealed to anonymous callers.
    let anonymous = app
        .client
        .get(app.url("/api/v1/nope"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);
    let authed = app.get_authed("/api/v1/nope").await;
    assert_eq!(authed.status(), 404);
}

#[tokio::test]
async fn the_generated_token_is_stored_privately_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let path = app.data_dir.path().join("api-token");
    let stored = std::fs::read_to_string(&path).expect("token file");
    assert_eq!(stored.trim(), app.token);
    assert!(app.token.len() >= 32);
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A second server on the same DATA_DIR reads the same token.
    let dir = app.data_dir.path().display().to_string();
    let again = spawn_app_with(|env| {
        env.insert("DATA_DIR".into(), dir);
    })
    .await;
    assert_eq!(again.token, app.token);
}

#[tokio::test]
async fn api_token_setting_wins_over_the_file() {
    let app = spawn_app_with(|env| {
        env.insert("API_TOKEN".into(), "configured-token-0123456789".into());
    })
    .await;
    assert_eq!(app.token, "configured-token-0123456789");
    assert!(!app.data_dir.path().join("api-token").exists());
    assert_eq!(app.get_authed("/api/v1/health").await.status(), 200);
}
