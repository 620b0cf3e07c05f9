"""The service's response schemas are the reading dataclasses', plus the service's own fields."""

import dataclasses

from digitlab.predicting.results import DigitReading, NumberReading
from digitlab.service.schemas import NumberDigit, NumberPrediction, Prediction


def json_fields(cls: type) -> dict[str, str]:
    return {f.name: f.metadata["description"] for f in dataclasses.fields(cls)
            if f.metadata.get("json", True)}


def test_schemas_have_every_json_field_of_the_readings_with_its_description():
    digit = json_fields(DigitReading)
    assert "pixels" not in digit
    for model, left_out in ((Prediction, {"box"}), (NumberDigit, {"preprocess"})):
        fields = model.model_fields
        assert set(fields) == set(digit) - left_out | {"input_png"}
        assert all(fields[name].description == text for name, text in digit.items() if name in fields)
    assert set(NumberPrediction.model_fields) == set(json_fields(NumberReading))
    assert NumberPrediction.model_fields["size"].description == json_fields(NumberReading)["size"]
    # what every answer has, the schema requires
    assert Prediction.model_fields["preprocess"].is_required()
    assert NumberDigit.model_fields["box"].is_required()
    assert not Prediction.model_fields["reason"].is_required()
