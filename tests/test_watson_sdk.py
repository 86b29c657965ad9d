"""The official Watson SDK for Python (ibm-watson 4.x, `VisualRecognitionV3`) against a
live test server: only the service URL and the key differ from IBM's cloud."""

import io

import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BasicAuthenticator
from ibm_watson import VisualRecognitionV3
from rq import SimpleWorker

from tests.images import encode, picture
from tests.test_watson import examples_zip

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def service(live_server, api_key, training_queue):
    service = VisualRecognitionV3(
        version="2018-03-19", authenticator=BasicAuthenticator("apikey", api_key)
    )
    service.set_service_url(f"{live_server.url}/visual-recognition/api")
    return service


@pytest.fixture
def zips(tmp_path):
    """Example zips on disk: the SDK sends only files that have a name."""

    def zips(*kinds):
        paths = []
        for kind in kinds:
            path = tmp_path / f"{kind}.zip"
            path.write_bytes(examples_zip(kind))
            paths.append(path.open("rb"))
        return paths

    return zips


def train(queue):
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_the_tutorial_runs_through_the_watson_sdk(service, training_queue, zips):
    discs, squares, stripes, blank, triangles = zips(
        "discs", "squares", "stripes", "blank", "triangles"
    )
    created = service.create_classifier(
        "shapes",
        positive_examples={"discs": discs, "squares": squares, "stripes": stripes},
        negative_examples=blank,
    ).get_result()
    classifier_id = created["classifier_id"]
    assert created["status"] == "training"

    train(training_queue)
    assert service.get_classifier(classifier_id).get_result()["status"] == "ready"

    updated = service.update_classifier(
        classifier_id, positive_examples={"triangles": triangles}
    ).get_result()
    assert updated["status"] == "retraining"
    train(training_queue)
    listed = service.list_classifiers(verbose=True).get_result()["classifiers"]
    assert [(c["classifier_id"], c["status"], len(c["classes"])) for c in listed] == [
        (classifier_id, "ready", 4)
    ]

    result = service.classify(
        images_file=io.BytesIO(encode(picture("discs", 700), "PNG")),
        images_filename="disc.png",
        classifier_ids=[classifier_id, "default"],
    ).get_result()
    custom = result["images"][0]["classifiers"][0]
    assert custom["classifier_id"] == classifier_id
    assert custom["classes"][0]["class"] == "discs"

    service.delete_classifier(classifier_id)
    with pytest.raises(ApiException) as missing:
        service.get_classifier(classifier_id)
    assert missing.value.code == 404


def test_the_sdk_reports_watsons_errors(service, zips):
    (discs,) = zips("discs")
    with pytest.raises(ApiException) as refused:
        service.create_classifier("lonely", positive_examples={"discs": discs})
    assert refused.value.code == 400
    assert "at least two" in refused.value.message
