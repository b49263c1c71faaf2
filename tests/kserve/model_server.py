"""Two small custom models served by the real KServe model server (v1 protocol), for the
engine's tests: `anomaly-detector` and `predictive-analytics`.

    python model_server.py --http_port 8080 --enable_grpc false [--serve NAME=KIND,...]

`--serve` chooses the names they are served under, e.g. `--serve model=anomaly-detector` serves
the anomaly-detector as `model`, as the Go engine's platform deploys each predictor (default:
each under its own name).

anomaly-detector
  - a numeric instance [last, mean, stddev, z] -> an anomaly probability min(1, |z| / 3), as a
    float (the Go engine's int-only decoding broke on exactly this);
  - a dict instance with "task": "layer" -> {"layer", "confidence"}: text with
    "mlhint-infrastructure" is the infrastructure layer (0.93), "mlhint-vague" an unsure
    platform guess (0.4), anything else the application (0.8).
predictive-analytics
  - [hour, day_of_week, cpu_percent, memory_percent] -> [cpu * 1.5 + 0.25, memory * 1.1 + 0.5, 0.87].
"""
import argparse
import json

import kserve


def instances(payload):
    """The v1 `instances`, whether KServe handed over parsed JSON or raw bytes."""
    if isinstance(payload, (bytes, str)):
        payload = json.loads(payload)
    return payload["instances"]


class AnomalyDetector(kserve.Model):
    def __init__(self, name):
        super().__init__(name)
        self.load()

    def load(self):
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        predictions = []
        for instance in instances(payload):
            if isinstance(instance, dict):
                text = " ".join(str(v) for v in instance.values() if v).lower()
                if "mlhint-infrastructure" in text:
                    predictions.append({"layer": "infrastructure", "confidence": 0.93})
                elif "mlhint-vague" in text:
                    predictions.append({"layer": "platform", "confidence": 0.4})
                else:
                    predictions.append({"layer": "application", "confidence": 0.8})
            else:
                z = float(instance[3])
                predictions.append(round(min(1.0, abs(z) / 3.0), 6))
        return {"predictions": predictions}


class PredictiveAnalytics(kserve.Model):
    def __init__(self, name):
        super().__init__(name)
        self.load()

    def load(self):
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        return {
            "predictions": [
                [round(float(i[2]) * 1.5 + 0.25, 3), round(float(i[3]) * 1.1 + 0.5, 3), 0.87]
                for i in instances(payload)
            ]
        }


KINDS = {"anomaly-detector": AnomalyDetector, "predictive-analytics": PredictiveAnalytics}

if __name__ == "__main__":
    # KServe's own parser ignores arguments it does not know, and so does this one.
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--serve", default="anomaly-detector=anomaly-detector,predictive-analytics=predictive-analytics"
    )
    args, _ = parser.parse_known_args()
    models = []
    for pair in args.serve.split(","):
        name, kind = pair.split("=")
        models.append(KINDS[kind](name))
    kserve.ModelServer().start(models)
