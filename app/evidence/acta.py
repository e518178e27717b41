"""The record of receipt ("acta de recepción") and the verification guide, for people, in es, pt_BR and en.

Generated from the package's own facts, never from anything a source wrote:
no file name, no message, no editor name, days only except the authority's
time stamp. Core PDF fonts cover Latin-1, which these three languages need.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from fpdf import FPDF

from app.evidence.custody import Entry
from app.evidence.receipts import Receipt

LANGUAGES = ("es", "pt_BR", "en")

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Record of receipt",
        "intro": "Items received anonymously by the tip line whose instance key has the fingerprint below. "
        "Hashes are SHA-256. Days are UTC. Verify with the guide VERIFY-en.txt in this package.",
        "instance": "Instance key fingerprint",
        "made": "Package made on",
        "item": "Item",
        "message": "message",
        "file": "file",
        "received": "Received on",
        "detected": "Type found in the bytes",
        "sent": "As sent",
        "stored": "As stored",
        "bytes": "bytes",
        "cleaning": "Hidden data",
        "stamp": "Time stamp",
        "stamped": "anchor of {day}, stamped by the authority at {time} UTC",
        "waiting": "not yet time-stamped",
        "custody": "Custody record",
        "entries": "{count} entries",
        "limits": "A time stamp proves that the record existed at that time, not when a file was made "
        "or whether what it shows is true.",
    },
    "es": {
        "title": "Acta de recepción",
        "intro": "Elementos recibidos de forma anónima por el buzón cuya clave de instancia tiene la huella "
        "indicada abajo. Los resúmenes son SHA-256. Los días son UTC. Verifíquelos con la guía VERIFY-es.txt "
        "de este paquete.",
        "instance": "Huella de la clave de la instancia",
        "made": "Paquete generado el",
        "item": "Elemento",
        "message": "mensaje",
        "file": "archivo",
        "received": "Recibido el",
        "detected": "Tipo hallado en los bytes",
        "sent": "Tal como se envió",
        "stored": "Tal como se guardó",
        "bytes": "bytes",
        "cleaning": "Datos ocultos",
        "stamp": "Sello de tiempo",
        "stamped": "ancla del {day}, sellada por la autoridad a las {time} UTC",
        "waiting": "aún sin sello de tiempo",
        "custody": "Registro de custodia",
        "entries": "{count} entradas",
        "limits": "Un sello de tiempo prueba que el registro existía en ese momento, no cuándo se creó un "
        "archivo ni si lo que muestra es cierto.",
    },
    "pt_BR": {
        "title": "Termo de recebimento",
        "intro": "Itens recebidos anonimamente pelo canal de denúncias cuja chave de instância tem a impressão "
        "digital abaixo. Os resumos são SHA-256. Os dias são UTC. Verifique com o guia VERIFY-pt_BR.txt "
        "deste pacote.",
        "instance": "Impressão digital da chave da instância",
        "made": "Pacote gerado em",
        "item": "Item",
        "message": "mensagem",
        "file": "arquivo",
        "received": "Recebido em",
        "detected": "Tipo encontrado nos bytes",
        "sent": "Como enviado",
        "stored": "Como armazenado",
        "bytes": "bytes",
        "cleaning": "Dados ocultos",
        "stamp": "Carimbo do tempo",
        "stamped": "âncora de {day}, carimbada pela autoridade às {time} UTC",
        "waiting": "ainda sem carimbo do tempo",
        "custody": "Registro de custódia",
        "entries": "{count} entradas",
        "limits": "Um carimbo do tempo prova que o registro existia naquele momento, não quando um arquivo "
        "foi criado nem se o que ele mostra é verdade.",
    },
}

_GUIDE: dict[str, str] = {
    "en": """How to verify this evidence package

1. With Buzón (any machine, offline, no key needed):
     buzon evidence verify PACKAGE.tar --tsa-ca AUTHORITY-CA.pem
   Use the certificate of the time-stamping authority that you trust, obtained from the authority
   itself, not only the copy in tsa/ca.pem. Each item gets a verdict; any altered byte is named.

2. By hand, for each item n:
   - sha256sum items/n/content must equal "stored_sha256" in items/n/receipt.json;
   - the receipt's commitment is SHA-256 of "buzon-commit-receipt-v1:" followed by receipt.json,
     and package.json gives its Merkle proof (RFC 6962) into an anchor;
   - each anchor's statement is anchors/NAME.statement and its time stamp anchors/NAME.tsr:
       openssl ts -verify -data anchors/NAME.statement -in anchors/NAME.tsr -CAfile AUTHORITY-CA.pem

The format is specified in full in Buzón's docs/evidence.md, so another program can check it too.
""",
    "es": """Cómo verificar este paquete de evidencia

1. Con Buzón (en cualquier equipo, sin conexión y sin clave):
     buzon evidence verify PAQUETE.tar --tsa-ca CA-DE-LA-AUTORIDAD.pem
   Use el certificado de la autoridad de sellado de tiempo en que confíe, obtenido de la propia
   autoridad, no solo la copia de tsa/ca.pem. Cada elemento recibe un veredicto; cualquier byte
   alterado se nombra.

2. A mano, para cada elemento n:
   - sha256sum items/n/content debe ser igual a "stored_sha256" en items/n/receipt.json;
   - el compromiso del recibo es SHA-256 de "buzon-commit-receipt-v1:" seguido de receipt.json,
     y package.json da su prueba de Merkle (RFC 6962) hacia un ancla;
   - la declaración de cada ancla es anchors/NOMBRE.statement y su sello anchors/NOMBRE.tsr:
       openssl ts -verify -data anchors/NOMBRE.statement -in anchors/NOMBRE.tsr -CAfile CA-DE-LA-AUTORIDAD.pem

El formato está especificado por completo en docs/evidence.md de Buzón, para que otro programa
también pueda verificarlo.
""",
    "pt_BR": """Como verificar este pacote de evidências

1. Com o Buzón (em qualquer máquina, offline, sem chave):
     buzon evidence verify PACOTE.tar --tsa-ca AC-DA-AUTORIDADE.pem
   Use o certificado da autoridade de carimbo do tempo em que você confia, obtido da própria
   autoridade, não apenas a cópia em tsa/ca.pem. Cada item recebe um veredito; qualquer byte
   alterado é nomeado.

2. À mão, para cada item n:
   - sha256sum items/n/content deve ser igual a "stored_sha256" em items/n/receipt.json;
   - o compromisso do recibo é o SHA-256 de "buzon-commit-receipt-v1:" seguido de receipt.json,
     e package.json traz sua prova de Merkle (RFC 6962) até uma âncora;
   - a declaração de cada âncora é anchors/NOME.statement e seu carimbo anchors/NOME.tsr:
       openssl ts -verify -data anchors/NOME.statement -in anchors/NOME.tsr -CAfile AC-DA-AUTORIDADE.pem

O formato está especificado por completo em docs/evidence.md do Buzón, para que outro programa
também possa verificá-lo.
""",
}


@dataclass(frozen=True)
class ActaItem:
    n: int
    kind: str
    received_on: str  # a UTC day
    detected: str
    sent: tuple[int, str]
    stored: tuple[int, str]
    cleaning: str
    anchor_day: str = ""  # "" while not yet anchored
    stamped_at: dt.datetime | None = None
    custody: list[str] = field(default_factory=list)  # "day action" lines, no names


def item_for(
    n: int, receipt: Receipt, anchor_day: str, stamped_at: dt.datetime | None, entries: list[Entry]
) -> ActaItem:
    """What the acta says of one item: from its receipt, its anchor and its custody entries only."""
    return ActaItem(
        n=n,
        kind=receipt.kind,
        received_on=receipt.received[:10],
        detected=receipt.detected,
        sent=(receipt.sent_size, receipt.sent_sha256),
        stored=(receipt.stored_size, receipt.stored_sha256),
        cleaning=receipt.cleaning,
        anchor_day=anchor_day,
        stamped_at=stamped_at,
        custody=[f"{e.time[:10]} {e.action}" for e in entries],
    )


def guide(language: str) -> bytes:
    return _GUIDE[language].encode("utf-8")


def acta_pdf(language: str, *, instance: str, made: dt.date, items: list[ActaItem]) -> bytes:
    """The record of receipt as a PDF; its only date is the package's day (no creation time)."""
    text = _TEXT[language]
    pdf = FPDF()
    pdf.set_creation_date(dt.datetime.combine(made, dt.time(), tzinfo=dt.UTC))
    pdf.set_title(text["title"])
    pdf.set_compression(False)  # plain text inside, so anyone can read what it lists
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(0, 10, text["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    _lines(pdf, [text["intro"], f"{text['instance']}: {instance}", f"{text['made']}: {made.isoformat()}", ""])
    for item in items:
        pdf.set_font("Helvetica", style="B", size=11)
        pdf.cell(0, 7, f"{text['item']} {item.n} ({text[item.kind]})", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Courier", size=8)
        stamp = (
            text["stamped"].format(day=item.anchor_day, time=f"{item.stamped_at:%Y-%m-%d %H:%M:%S}")
            if item.stamped_at is not None
            else text["waiting"]
        )
        _lines(
            pdf,
            [
                f"{text['received']}: {item.received_on}",
                f"{text['detected']}: {item.detected or '-'}",
                f"{text['sent']}: {item.sent[1]} ({item.sent[0]} {text['bytes']})",
                f"{text['stored']}: {item.stored[1]} ({item.stored[0]} {text['bytes']})",
                f"{text['cleaning']}: {item.cleaning or '-'}",
                f"{text['stamp']}: {stamp}",
                f"{text['custody']}: {text['entries'].format(count=len(item.custody))}",
                *(f"  {line}" for line in item.custody),
                "",
            ],
        )
    pdf.set_font("Helvetica", style="I", size=9)
    _lines(pdf, [text["limits"]])
    return bytes(pdf.output())


def _lines(pdf: FPDF, lines: list[str]) -> None:
    for line in lines:
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
