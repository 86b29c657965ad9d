"""Turning uploaded files and zip archives into stored images, one file at a time, and
reading the images sent to be classified (the pages, /api/v1 and Watson share one reader).

Every file gets a line in the report: added, duplicate, or rejected with the reason.
One bad file never stops the rest. Zip members are read one at a time into memory,
never extracted by name, so no member can write anywhere.
"""

import hashlib
import io
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import PIL.Image
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.utils.translation import gettext

from tasks import datasets, near_copies
from tasks.fetching import FetchRefused, fetch_image
from tasks.imaging import ImageRejected, check_image, decoded_photo
from tasks.models import Image, NearCopies, delete_files

ZIP_MAGIC = b"PK\x03\x04"


# Marks that reorder text invisibly: "gnp.exe" behind U+202E reads as "exe.png".
BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)


def printable(name):
    """A file or folder name as people will read it: without control characters or
    invisible reordering marks."""
    kept = "".join(c for c in name.translate(BIDI_CONTROLS) if unicodedata.category(c) != "Cc")
    return kept.strip() or "unnamed"


def member_name(info):
    """A zip member's name. Without the UTF-8 flag, zipfile reads names as CP437, the
    DOS encoding, but many tools write UTF-8 and do not set the flag: try that first."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.filename


@dataclass
class FileOutcome:
    name: str
    outcome: str  # "added", "duplicate" or "rejected"
    reason: str = ""
    image: Image | None = None
    copy_of: Image | None = None  # for an added photo: the one it looks like a copy of

    def __post_init__(self):
        self.name = printable(self.name)

    @property
    def copy_note(self):
        """What an added near-copy is told with, after its name."""
        original = self.copy_of
        where = original.category.name if original.category else gettext("Unsorted")
        return gettext("looks like a copy of %(name)s (%(where)s)") % {
            "name": original.display_name,
            "where": where,
        }


@dataclass
class ImportReport:
    files: list[FileOutcome] = field(default_factory=list)

    def of(self, outcome):
        return [file for file in self.files if file.outcome == outcome]

    @property
    def added(self):
        return self.of("added")

    @property
    def duplicates(self):
        return self.of("duplicate")

    @property
    def rejected(self):
        return self.of("rejected")

    @property
    def near_duplicates(self):
        """The added photos that look like copies of photos already in the task: stored
        all the same (a crop may be wanted), and told."""
        return [file for file in self.added if file.copy_of]

    @property
    def counts(self):
        return {outcome: len(self.of(outcome)) for outcome in ("added", "duplicate", "rejected")}


@dataclass(frozen=True)
class Limits:
    image_bytes: int
    image_pixels: int
    zip_bytes: int
    zip_members: int
    zip_uncompressed_bytes: int

    @classmethod
    def from_settings(cls):
        return cls(
            image_bytes=settings.VIZE_MAX_IMAGE_BYTES,
            image_pixels=settings.VIZE_MAX_IMAGE_PIXELS,
            zip_bytes=settings.VIZE_MAX_ZIP_BYTES,
            zip_members=settings.VIZE_MAX_ZIP_MEMBERS,
            zip_uncompressed_bytes=settings.VIZE_MAX_ZIP_UNCOMPRESSED_BYTES,
        )


def megabytes(size):
    return f"{size / 1024 / 1024:.3g} MB"


def import_files(task, files, *, category=None, folders_as_categories=False, limits=None):
    """Store each uploaded file (an image or a zip of images) in task.

    Images go to category (None is Unsorted). With folders_as_categories, the top
    folders of a zip name the categories of its members, created when missing.
    """
    limits = limits or Limits.from_settings()
    report = ImportReport()
    copies = NearCopies(task)
    for upload in files:
        if is_zip(upload):
            import_zip(task, upload, category, folders_as_categories, limits, report, copies)
        elif upload.size > limits.image_bytes:
            report.files.append(
                FileOutcome(upload.name, "rejected", too_large(upload.size, limits))
            )
        else:
            report.files.append(
                import_image(task, upload.name, upload.read(), category, limits, copies)
            )
    return report


@dataclass
class Sent:
    """One image sent to be classified, as read: ready to predict (image holds its bytes)
    or refused, with the reason worded for the sender."""

    name: str  # the file's name; a zip member as zip/path; a URL as sent
    image: io.BytesIO | None = None  # None when refused
    # image decoded, upright RGB, for the model to read without decoding it again; None
    # when refused, or when the request's photos kept decoded took their room (Reading)
    photo: PIL.Image.Image | None = None
    reason: str = ""
    over_limit: bool = False  # refused for its size or the count of files, not its content
    whole_zip: bool = False  # the refusal is of a whole archive, none of its members read
    file_index: int | None = None  # its place among the uploads, when sent whole (not zipped)
    resolved_url: str = ""  # for a URL: where the image came from after redirects

    def __post_init__(self):
        self.name = printable(self.name)

    @property
    def to_predict(self):
        """What the model reads: the decoded photo, or else the data to decode again."""
        return self.image if self.photo is None else self.photo


def images_to_classify(files, limits, max_files, fetched=()):
    """A Sent for each image in uploaded files (images and zips of images), then for
    each of fetched (URLs already fetched, see fetch), in the order sent, for a
    classification that stores nothing. Only the first max_files are read; the rest are
    refused unread, each on its own line."""
    sent = []
    reading = Reading(limits)
    for index, upload in enumerate(files):
        if is_zip(upload):
            add_members(sent, upload.name, ZipUpload(upload, limits), reading, max_files)
        elif len(sent) >= max_files:
            sent.append(over_the_count(upload.name, max_files, file_index=index))
        elif upload.size > limits.image_bytes:
            refusal = too_large(upload.size, limits)
            sent.append(Sent(upload.name, reason=refusal, over_limit=True, file_index=index))
        else:
            sent.append(reading.image(upload.name, upload.read(), file_index=index))
    for url, data, where, refusal in fetched:
        if len(sent) >= max_files:
            sent.append(over_the_count(url, max_files, resolved_url=where))
        elif refusal:
            sent.append(Sent(url, reason=refusal, resolved_url=where))
        else:
            sent.append(reading.image(url, data, resolved_url=where))
    return sent


def add_members(sent, name, archive, reading, max_files):
    """A Sent for each member of archive onto sent, each read only while sent holds
    fewer than max_files."""
    if archive.refusal:
        sent.append(
            Sent(name, reason=archive.refusal, over_limit=archive.over_limit, whole_zip=True)
        )
        return
    members = iter(archive)  # a member is read when the next one is asked for
    for path in archive.paths:
        member = f"{name}/{path}"
        if len(sent) >= max_files:
            sent.append(over_the_count(member, max_files))
            continue
        read = next(members, None)
        if read is None:
            return  # the archive unpacks past its limit, as the last member's refusal says
        _, data, refusal = read
        sent.append(Sent(member, reason=refusal) if refusal else reading.image(member, data))


def over_the_count(name, max_files, **where):
    reason = gettext("more than %(count)s images in one request") % {"count": max_files}
    return Sent(name, reason=reason, over_limit=True, **where)


class Reading:
    """Each image sent to be classified checked by decoding it, and kept decoded for the
    prediction (decoding a photo costs about as much as resizing it for the model) while
    the photos kept hold fewer pixels than the largest one allowed: past that, an image is
    checked at a fraction of its size and decoded again when predicted, so that a request
    of many large photos never holds them all decoded at once."""

    def __init__(self, limits):
        self.limits = limits
        self.pixels_kept = 0

    def image(self, name, data, **where):
        max_pixels = self.limits.image_pixels
        try:
            if self.pixels_kept < max_pixels:
                photo = decoded_photo(data, max_pixels=max_pixels)
                self.pixels_kept += photo.width * photo.height
            else:
                check_image(data, max_pixels=max_pixels, thumbnail_size=8)
                photo = None
        except ImageRejected as rejection:
            return Sent(name, reason=str(rejection), **where)
        return Sent(name, image=io.BytesIO(data), photo=photo, **where)


def fetch(url, limits):
    """(url, data, resolved url, refusal) of an image sent as a URL; data is None when
    refused. Nothing is decoded: this is network work, done before an inference slot is
    taken, so a slow server never holds one."""
    try:
        data, resolved_url = fetch_image(url, limits.image_bytes)
    except FetchRefused as refusal:
        return url, None, url, str(refusal)
    return url, data, resolved_url, ""


def is_zip(upload):
    upload.seek(0)
    head = upload.read(len(ZIP_MAGIC))
    upload.seek(0)
    return head == ZIP_MAGIC


def too_large(size, limits):
    return gettext("the file is %(size)s; the limit is %(limit)s per image") % {
        "size": megabytes(size),
        "limit": megabytes(limits.image_bytes),
    }


def import_image(task, name, data, category, limits, copies):
    """Store one photo of an upload in task; copies is the upload's NearCopies, shared by
    all its photos."""
    name = printable(name)
    sha256 = hashlib.sha256(data).hexdigest()
    existing = task.images.filter(sha256=sha256).select_related("category").first()
    if existing:
        return duplicate_of(name, existing)
    if revived := deleted_copy_back(task, sha256, name, category):
        copies.brought_back(revived)
        return FileOutcome(name, "added", image=revived)
    try:
        checked = check_image(
            data, max_pixels=limits.image_pixels, thumbnail_size=settings.VIZE_THUMBNAIL_SIZE
        )
    except ImageRejected as rejection:
        return FileOutcome(name, "rejected", str(rejection))

    file_name = f"{task.storage_prefix}/images/{sha256}.{checked.extension}"
    thumbnail_name = f"{task.storage_prefix}/thumbnails/{sha256}.jpg"
    written = []
    try:
        for stored_name, content in ((file_name, data), (thumbnail_name, checked.thumbnail)):
            if write_once(stored_name, content):
                written.append(stored_name)
    except OSError as error:
        delete_files(default_storage, written)
        reason = gettext("could not be stored (%(error)s)") % {"error": error.strerror or error}
        return FileOutcome(name, "rejected", reason)
    fingerprint = checked.fingerprint
    phash = None if fingerprint is None else near_copies.perceptual_hash(fingerprint)
    copy_of = copies.copy_of(fingerprint)
    try:
        with transaction.atomic():
            image = task.images.create(
                category=category,
                sha256=sha256,
                file=file_name,
                thumbnail=thumbnail_name,
                original_name=name[-255:],
                format=checked.format,
                width=checked.width,
                height=checked.height,
                size=len(data),
                fingerprint=fingerprint,
                perceptual_hash=phash,
            )
            if copy_of:
                image.join_copies_of(copy_of)
    except IntegrityError:
        # The same bytes arrived in a concurrent upload, which stored them first.
        return duplicate_of(name, task.images.select_related("category").get(sha256=sha256))
    except DatabaseError:
        delete_files(default_storage, written)
        raise
    return FileOutcome(name, "added", image=image, copy_of=copy_of)


def deleted_copy_back(task, sha256, name, category):
    """The deleted photo of these bytes, brought back as if uploaded now, while it waits
    for an undo: its row holds the only name these bytes may be stored under in the task,
    and the workers would remove the files with it. None when there is none."""
    deleted = Image.with_deleted.filter(task=task, sha256=sha256).exclude(deleted_at=None)
    if not deleted.update(deleted_at=None, category=category, original_name=name[-255:]):
        return None
    return task.images.select_related("category").get(sha256=sha256)


def duplicate_of(name, existing):
    where = existing.category.name if existing.category else gettext("Unsorted")
    return FileOutcome(
        name,
        "duplicate",
        gettext("the same picture is already in this task (%(name)s, in %(where)s)")
        % {"name": existing.display_name, "where": where},
        image=existing,
    )


def write_once(name, data):
    """Store data under its content-addressed name unless a file already holds these
    very bytes; whether this call wrote it."""
    if default_storage.exists(name):
        return False
    stored = default_storage.save(name, ContentFile(data))
    if stored != name:
        # A concurrent upload wrote the same name between exists() and save().
        default_storage.delete(stored)
        return False
    return True


def import_zip(task, upload, category, folders_as_categories, limits, report, copies):
    archive = ZipUpload(upload, limits)
    if archive.refusal:
        report.files.append(FileOutcome(upload.name, "rejected", archive.refusal))
        return
    strip = common_folders(archive.paths) if folders_as_categories else 0
    labels = labels_file(archive.paths, strip) if folders_as_categories else None
    categories = FolderCategories(task, archive.read(labels) if labels else b"")
    for path, data, refusal in archive:
        if path == labels:
            continue  # read above: not a photo
        name = f"{upload.name}/{path}"
        if refusal:
            report.files.append(FileOutcome(name, "rejected", refusal))
            continue
        target = category
        if folders_as_categories:
            folder = category_folder(path, strip)
            if folder:
                target = categories.of(folder)
        report.files.append(import_image(task, name, data, target, limits, copies))


def labels_file(paths, strip):
    """The path of a dataset zip's labels.csv (tasks/datasets.py), beside its category
    folders; None for a zip without one."""
    for path in paths:
        if PurePosixPath(path).parts[strip:] == (datasets.LABELS_FILE,):
            return path
    return None


class FolderCategories:
    """The categories that a zip's folders name: each its own, unless the labels.csv of
    a dataset zip names them. That file says the name of each folder's category (a
    folder's name is the category's made safe as a file name) and which one holds the
    negative examples: a category this upload creates holds them when the task has no
    such category yet."""

    def __init__(self, task, labels):
        self.task = task
        self.named = {
            printable(folder): (printable(name), negative)
            for folder, (name, negative) in datasets.folder_categories(labels).items()
        }
        self.seen = set()

    def of(self, folder):
        name, negative = self.named.get(folder, (folder, False))
        if negative and folder not in self.seen:
            self.seen.add(folder)
            return self.negative_category(name)
        return self.task.category_named(name)

    def negative_category(self, name):
        new = not self.task.categories.filter(name__iexact=name.strip()).exists()
        category = self.task.category_named(name)
        if new and not self.task.categories.filter(is_negative=True).exists():
            category.is_negative = True
            category.save(update_fields=["is_negative"])
        return category


class ZipUpload:
    """An uploaded zip archive, read member by member within the limits. refusal says
    why the archive as a whole is refused; iterating yields (path, data, refusal) for
    each wanted member, data None where refused, and ends early with a refusal once the
    members unpack to more than the limit."""

    def __init__(self, upload, limits):
        self.limits = limits
        self.refusal = ""
        self.over_limit = False
        self.members = []
        if upload.size > limits.zip_bytes:
            self.over_limit = True
            self.refusal = gettext("the archive is %(size)s; the limit is %(limit)s per zip") % {
                "size": megabytes(upload.size),
                "limit": megabytes(limits.zip_bytes),
            }
            return
        try:
            self.archive = zipfile.ZipFile(upload)
            self.members = sorted(
                (info for info in self.archive.infolist() if is_wanted(info)), key=member_name
            )
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError):
            self.refusal = gettext("not a readable zip archive")
            return
        if len(self.members) > limits.zip_members:
            self.over_limit = True
            self.refusal = gettext(
                "the archive holds %(count)s files; the limit is %(limit)s per zip"
            ) % {"count": f"{len(self.members):,}", "limit": f"{limits.zip_members:,}"}

    @property
    def paths(self):
        return [member_name(info) for info in self.members]

    def read(self, path):
        """The bytes of the member at path, within the image limit; b"" if refused."""
        info = next(info for info in self.members if member_name(info) == path)
        if unsafe_member(info):
            return b""
        data, refusal = read_member(self.archive, info, self.limits)
        return b"" if refusal else data

    def __iter__(self):
        if self.refusal:
            return
        uncompressed = 0
        with self.archive:
            for info in self.members:
                name = member_name(info)
                refusal = unsafe_member(info)
                if refusal:
                    yield name, None, refusal
                    continue
                data, refusal = read_member(self.archive, info, self.limits)
                if refusal:
                    yield name, None, refusal
                    continue
                uncompressed += len(data)
                if uncompressed > self.limits.zip_uncompressed_bytes:
                    yield (
                        name,
                        None,
                        gettext(
                            "the archive unpacks to more than %(limit)s; "
                            "this and the files after it were not read"
                        )
                        % {"limit": megabytes(self.limits.zip_uncompressed_bytes)},
                    )
                    return
                yield name, data, ""


def is_wanted(info):
    """Folders, macOS resource forks and hidden files are not photos."""
    if info.is_dir():
        return False
    parts = PurePosixPath(info.filename).parts
    return not any(part == "__MACOSX" or is_hidden(part) for part in parts)


def is_hidden(part):
    return part.startswith(".") and part not in (".", "..")


def unsafe_member(info):
    path = info.filename.replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return gettext("an absolute path inside the archive; not read")
    if ".." in path.split("/"):
        return gettext("a path that leaves the archive (..); not read")
    if stat.S_ISLNK(info.external_attr >> 16):
        return gettext("a symbolic link, not a file; not read")
    if info.flag_bits & 0x1:
        return gettext("encrypted; vizeapp cannot read password-protected archives")
    return ""


def read_member(archive, info, limits):
    """The member's bytes, read up to one byte past the image limit whatever its header
    declares, so neither a zip bomb nor a lying size can fill the memory."""
    if info.file_size > limits.image_bytes:
        return None, too_large(info.file_size, limits)
    try:
        with archive.open(info) as member:
            data = member.read(limits.image_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError):
        return None, gettext(
            "could not be read from the archive (damaged or unsupported compression)"
        )
    if len(data) > limits.image_bytes:
        return None, gettext("unpacks to more than %(limit)s, the limit per image") % {
            "limit": megabytes(limits.image_bytes)
        }
    if data.startswith(ZIP_MAGIC):
        return None, gettext("a zip inside the zip; upload it on its own")
    return data, ""


def common_folders(paths):
    """How many leading folders all members share while some member goes deeper: the
    wrapping folders of a zipped directory, such as dataset/train/ in
    dataset/train/ants/1.jpg, which are not category names."""
    folder_lists = [PurePosixPath(path).parts[:-1] for path in paths]
    depth = 0
    while (
        folder_lists
        and all(len(folders) > depth for folders in folder_lists)
        and len({folders[depth] for folders in folder_lists}) == 1
        and any(len(folders) > depth + 1 for folders in folder_lists)
    ):
        depth += 1
    return depth


def category_folder(path, strip):
    folders = PurePosixPath(path).parts[:-1]
    return printable(folders[strip]) if len(folders) > strip else ""
