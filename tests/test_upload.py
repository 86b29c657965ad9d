"""Uploading photos and zip archives through the task page's upload view."""

import hashlib
import os
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tasks.models import Image
from tests import images


@pytest.fixture
def upload(owner_client, task):
    def send(*files, target="unsorted", htmx=True):
        uploads = [SimpleUploadedFile(name, data) for name, data in files]
        headers = {"HX-Request": "true"} if htmx else {}
        return owner_client.post(
            reverse("tasks:upload", args=[task.code]),
            {"files": uploads, "target": target},
            headers=headers,
        )

    return send


def outcomes(response):
    """(file name, outcome) pairs from the report fragment, in the order shown."""
    html = response.content.decode()
    pairs = []
    for part in html.split('<span class="badge">')[1:]:
        outcome, rest = part.split("</span>", 1)
        name = rest.split('<span class="file-name">', 1)[1].split("</span>", 1)[0]
        pairs.append((name, outcome))
    return sorted(pairs)


def test_it_adds_each_photo_to_the_chosen_category(upload, task, ants):
    response = upload(("a.png", images.png()), ("b.jpg", images.jpeg()), target=str(ants.code))
    assert response.status_code == 200
    assert outcomes(response) == [("a.png", "added"), ("b.jpg", "added")]
    assert ants.images.count() == 2


def test_it_puts_photos_without_a_target_in_unsorted(upload, task):
    upload(("a.png", images.png()))
    assert task.images.get().category is None


def test_it_reports_every_bad_file_by_name_and_keeps_the_good_ones(upload, task):
    truncated = images.jpeg(size=(300, 200))[:400]
    response = upload(
        ("notes.jpg", b"a text file wearing a .jpg name"),
        ("empty.png", b""),
        ("good.png", images.png()),
        ("broken.jpg", truncated),
    )
    html = response.content.decode()
    assert outcomes(response) == [
        ("broken.jpg", "rejected"),
        ("empty.png", "rejected"),
        ("good.png", "added"),
        ("notes.jpg", "rejected"),
    ]
    assert "notes.jpg</span>: not an image in a supported format" in html
    assert "empty.png</span>: the file is empty" in html
    assert "broken.jpg</span>: the image data is damaged or truncated" in html
    assert task.images.count() == 1


def test_it_stores_the_same_picture_once_and_reports_the_duplicate(upload, task):
    upload(("first.png", images.png()))
    response = upload(("again.png", images.png()))
    assert outcomes(response) == [("again.png", "duplicate")]
    assert "already in this task (first.png, in Unsorted)" in response.content.decode()
    assert task.images.count() == 1


def test_it_finds_duplicates_within_one_batch(upload, task):
    response = upload(("one.png", images.png()), ("two.png", images.png()))
    assert outcomes(response) == [("one.png", "added"), ("two.png", "duplicate")]


def test_the_same_picture_may_be_in_two_tasks(upload, owner, task):
    other = owner.tasks.create(name="Other")
    upload(("a.png", images.png()))
    other_client_upload = SimpleUploadedFile("a.png", images.png())
    from tasks import imports

    assert imports.import_files(other, [other_client_upload]).added


def test_it_stores_the_original_bytes_by_task_code_and_hash(upload, task, media_root):
    data = images.jpeg()
    upload(("photo.jpg", data))
    image = task.images.get()
    digest = hashlib.sha256(data).hexdigest()
    assert image.file.name == f"tasks/{task.code}/images/{digest}.jpg"
    assert (media_root / image.file.name).read_bytes() == data
    assert (media_root / image.thumbnail.name).read_bytes()[:3] == b"\xff\xd8\xff"
    assert (image.original_name, image.format, image.width, image.height) == (
        "photo.jpg",
        "JPEG",
        64,
        48,
    )


def test_it_refuses_an_image_over_the_byte_limit(upload, task, settings):
    settings.VIZE_MAX_IMAGE_BYTES = 1000
    big = images.jpeg(size=(300, 300))
    response = upload(("big.jpg", big))
    assert "the limit is 0.000954 MB per image" in response.content.decode()
    assert task.images.count() == 0


def test_a_zip_dropped_on_a_category_fills_that_category(upload, ants):
    archive = images.zip_of({"x/one.png": images.png((1, 2, 3)), "two.jpg": images.jpeg()})
    response = upload(("photos.zip", archive), target=str(ants.code))
    assert outcomes(response) == [
        ("photos.zip/two.jpg", "added"),
        ("photos.zip/x/one.png", "added"),
    ]
    assert ants.images.count() == 2


def test_a_zip_dropped_on_the_task_makes_categories_of_its_top_folders(upload, task):
    archive = images.zip_of(
        {
            "dataset/train/ants/1.png": images.png((200, 0, 0)),
            "dataset/train/ants/2.png": images.png((201, 0, 0)),
            "dataset/train/Bees/3.png": images.png((0, 0, 200)),
            "dataset/train/loose.png": images.png((0, 200, 0)),
        }
    )
    upload(("dataset.zip", archive), target="all")
    counts = {c.name: c.images.count() for c in task.categories.all()}
    assert counts == {"ants": 2, "Bees": 1}
    assert task.images.filter(category=None).count() == 1


def test_zip_folders_join_existing_categories_ignoring_case(upload, task, ants):
    upload(("z.zip", images.zip_of({"ANTS/1.png": images.png()})), target="all")
    assert list(task.categories.values_list("name", flat=True)) == ["ants"]
    assert ants.images.count() == 1


def test_zip_names_in_utf_8_without_the_flag_are_read_as_utf_8(upload, task):
    archive = images.legacy_zip({"fotografía/ü.png".encode(): images.png()})
    upload(("z.zip", archive), target="all")
    image = task.images.get()
    assert (image.category.name, image.original_name) == ("fotografía", "z.zip/fotografía/ü.png")


def test_zip_names_in_the_dos_encoding_are_read(upload, task):
    archive = images.legacy_zip({"café/a.png".encode("cp437"): images.png()})
    upload(("z.zip", archive), target="all")
    assert task.images.get().category.name == "café"


def test_control_characters_and_reordering_marks_are_dropped_from_names(upload, task):
    archive = images.zip_of({"\x1b[31mants/evil\u202egnp.exe.png": images.png()})
    response = upload(("z\x07.zip", archive), target="all")
    image = task.images.get()
    assert image.category.name == "[31mants"
    assert image.original_name == "z.zip/[31mants/evilgnp.exe.png"
    assert outcomes(response) == [("z.zip/[31mants/evilgnp.exe.png", "added")]


def test_a_zip_member_cannot_escape_the_archive(upload, task, media_root, tmp_path):
    archive = images.zip_of(
        {
            "../evil.jpg": images.jpeg(),
            "/etc/evil.png": images.png(),
            "fine.png": images.png((9, 9, 9)),
        }
    )
    response = upload(("evil.zip", archive))
    html = response.content.decode()
    assert "evil.zip/../evil.jpg</span>: a path that leaves the archive" in html
    assert "evil.zip//etc/evil.png</span>: an absolute path inside the archive" in html
    assert task.images.count() == 1
    assert not (tmp_path / "evil.jpg").exists()
    assert not (media_root.parent / "evil.jpg").exists()


def test_a_zip_bomb_is_refused_after_reading_one_byte_past_the_limit(upload, task, settings):
    settings.VIZE_MAX_IMAGE_BYTES = 1024 * 1024
    zeros = b"\0" * (50 * 1024 * 1024)
    archive = images.zip_of({"bomb.png": zeros})
    assert len(archive) < 100_000
    response = upload(("bomb.zip", archive))
    assert "bomb.zip/bomb.png</span>: the file is 50 MB; the limit is 1 MB per image" in (
        response.content.decode()
    )
    assert task.images.count() == 0


def test_a_zip_member_that_lies_about_its_size_is_refused(upload, task, settings):
    settings.VIZE_MAX_IMAGE_BYTES = 1024 * 1024
    archive = bytearray(images.zip_of({"liar.png": b"\0" * (5 * 1024 * 1024)}))
    # Declare 100 bytes in the central directory and the local header alike.
    real = (5 * 1024 * 1024).to_bytes(4, "little")
    archive = bytes(archive).replace(real, (100).to_bytes(4, "little"))
    response = upload(("liar.zip", archive))
    assert "liar.zip/liar.png</span>: could not be read from the archive" in (
        response.content.decode()
    )


def test_the_uncompressed_total_of_a_zip_is_limited(upload, task, settings):
    settings.VIZE_MAX_ZIP_UNCOMPRESSED_BYTES = 2_000
    members = {f"{i}.png": images.png(color) for i, color in enumerate(images.colors(30))}
    response = upload(("many.zip", images.zip_of(members)))
    assert "unpacks to more than" in response.content.decode()
    assert 0 < task.images.count() < 30


def test_the_number_of_zip_members_is_limited(upload, task, settings):
    settings.VIZE_MAX_ZIP_MEMBERS = 3
    members = {f"{i}.png": images.png(color) for i, color in enumerate(images.colors(4))}
    response = upload(("four.zip", images.zip_of(members)))
    assert "four.zip</span>: the archive holds 4 files; the limit is 3 per zip" in (
        response.content.decode()
    )
    assert task.images.count() == 0


def test_the_size_of_a_zip_is_limited(upload, task, settings):
    settings.VIZE_MAX_ZIP_BYTES = 500
    response = upload(("big.zip", images.zip_of({"noise.bin": os.urandom(2000)})))
    assert "big.zip</span>: the archive is" in response.content.decode()


def test_macos_resource_forks_and_hidden_files_are_skipped(upload, task):
    archive = images.zip_of(
        {
            "__MACOSX/._a.png": b"resource fork",
            ".DS_Store": b"finder",
            "folder/.hidden.png": images.png((1, 1, 1)),
            "a.png": images.png(),
        }
    )
    response = upload(("mac.zip", archive))
    assert outcomes(response) == [("mac.zip/a.png", "added")]


def test_a_zip_inside_a_zip_is_not_opened(upload, task):
    inner = images.zip_of({"a.png": images.png()})
    response = upload(("outer.zip", images.zip_of({"inner.zip": inner})))
    assert "outer.zip/inner.zip</span>: a zip inside the zip" in response.content.decode()


def test_a_damaged_zip_is_reported(upload, task):
    archive = images.zip_of({"a.png": images.png()})
    response = upload(("damaged.zip", archive[:40]))
    assert "damaged.zip</span>: not a readable zip archive" in response.content.decode()


def test_an_encrypted_member_is_reported(upload, task):
    archive = bytearray(images.zip_of({"secret.png": images.png()}, zipfile.ZIP_STORED))
    # Set the "encrypted" flag bit in the local header and the central directory.
    for offset in (6, archive.rfind(b"PK\x01\x02") + 8):
        archive[offset] |= 0x1
    response = upload(("locked.zip", bytes(archive)))
    assert "locked.zip/secret.png</span>: encrypted" in response.content.decode()


def test_a_plain_form_upload_redirects_with_a_summary(upload, task):
    response = upload(("a.png", images.png()), ("b.txt", b"words"), htmx=False)
    assert response.status_code == 302
    followed = response.client.get(response.url)
    html = followed.content.decode()
    assert "1 added, 0 duplicates, 1 rejected." in html
    assert "b.txt: not an image in a supported format" in html


def test_an_upload_without_files_is_refused_to_the_script_with_the_reason(owner_client, task):
    response = owner_client.post(
        reverse("tasks:upload", args=[task.code]),
        {"target": "unsorted"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    assert response.content.decode() == "Choose at least one photo or zip file to upload."


def test_an_upload_to_another_tasks_category_is_refused(upload, owner, task):
    other = owner.tasks.create(name="Other").categories.create(name="cats")
    response = upload(("a.png", images.png()), target=str(other.code))
    assert response.status_code == 404
    assert not Image.objects.exists()
