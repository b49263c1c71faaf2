use super::*;

#[test]
fn predictions_decode_as_numbers_whatever_their_form() {
    assert_eq!(numbers(&json!(3)), vec![3.0]);
    assert_eq!(numbers(&json!(0.75)), vec![0.75]);
    assert_eq!(numbers(&json!("0.5")), vec![0.5]);
    assert_eq!(numbers(&json!([0.1, [2, 3.5]])), vec![0.1, 2.0, 3.5]);
    assert_eq!(numbers(&json!({"score": -1})), vec![-1.0]);
    assert!(numbers(&json!(null)).is_empty());
}

#[test]
fn service_names_with_or_without_the_predictor_suffix() {
    assert_eq!(
        service_url("anomaly-detector", "ml"),
        (
            "http://anomaly-detector-predictor.ml.svc:8080".into(),
            "anomaly-detector".into()
        )
    );
    assert_eq!(
        service_url("anomaly-detector-predictor", "ml").1,
        "anomaly-detector"
    );
}

#[test]
fn the_setting_is_named_after_the_model() {
    let model = Model::new(
        "anomaly-detector",
        "http://x",
        None,
        "x",
        Duration::from_secs(1),
    )
    .expect("model");
    assert_eq!(model.setting(), "KSERVE_ANOMALY_DETECTOR_MODEL");
    assert_eq!(model.name_source(), NameSource::Discovered);
    assert_eq!(model.served_name(), None);
}

async fn failing(open_for: Duration) -> Model {
    crate::tls::install_default_provider();
    // Nothing listens on port 9 of 127.0.0.1: every call fails fast.
    let model = Model::new(
        "m",
        "http://127.0.0.1:9",
        Some("m"),
        "m",
        Duration::from_millis(200),
    )
    .expect("model")
    .with_open_for(open_for);
    for _ in 0..3 {
        assert!(matches!(
            model.ready().await,
            Err(ModelError::Failed { .. })
        ));
    }
    model
}

#[tokio::test]
async fn the_breaker_opens_after_three_failures() {
    let model = failing(Duration::from_secs(3600)).await;
    assert_eq!(model.circuit(), Circuit::Open);
    assert!(matches!(
        model.predict(json!([[1.0]])).await,
        Err(ModelError::CircuitOpen { failures: 3, .. })
    ));
}

#[tokio::test]
async fn after_the_open_period_one_probe_goes_through_and_a_failed_probe_reopens() {
    let model = failing(Duration::ZERO).await;
    assert_eq!(model.circuit(), Circuit::HalfOpen);
    // The probe reaches the (absent) model and fails: open again, one more failure.
    assert!(matches!(
        model.ready().await,
        Err(ModelError::Failed { .. })
    ));
    assert_eq!(
        model.breaker.lock().map(|b| b.failures).unwrap_or_default(),
        4
    );
}
