use super::*;
use serde_json::json;

#[test]
fn features_and_scores() {
    let points: Vec<(f64, f64)> = (0..9)
        .map(|i| (i as f64, 1.0))
        .chain([(9.0, 11.0)])
        .collect();
    let [last, mean, std, z] = features(&points).expect("features");
    assert_eq!((last, mean), (11.0, 2.0));
    assert!((std - 3.0).abs() < 1e-9);
    assert!((z - 3.0).abs() < 1e-9);
    assert!((z_score(z) - 0.6).abs() < 1e-9);
    assert_eq!(z_score(-10.0), 1.0);
    assert_eq!(model_score(&json!(-1)), Some(1.0));
    assert_eq!(model_score(&json!(1)), Some(0.0));
    assert_eq!(model_score(&json!(0.42)), Some(0.42));
    assert_eq!(model_score(&json!([0.8])), Some(0.8));
    assert_eq!(
        model_score(&json!([1.0])),
        Some(1.0),
        "a certain anomaly, not a label"
    );
    assert_eq!(model_score(&json!({"score": 1.0})), Some(1.0));
    assert_eq!(model_score(&json!([-1])), Some(1.0));
    assert_eq!(severity(0.95), "critical");
    assert_eq!(severity(0.3), "low");
}

#[test]
fn the_scope_becomes_escaped_matchers_and_a_label_join() {
    let scope = Scope {
        namespace: Some("shop".into()),
        pod: None,
        deployment: Some("web.v2".into()),
        labels: vec![("app.kubernetes.io/name".into(), "web\"".into())],
    };
    assert_eq!(
        scope.selector(),
        vec![
            r#"namespace="shop""#.to_string(),
            r#"pod=~"web\\.v2-.*""#.to_string()
        ]
    );
    assert!(
        scope
            .with_labels("q".into())
            .contains(r#"kube_pod_labels{label_app_kubernetes_io_name="web\""}"#)
    );
}
