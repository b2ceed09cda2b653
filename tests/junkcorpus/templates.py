"""The words of the corpus's messages: our own sentences, put together by a seeded generator."""

from __future__ import annotations

import html as html_lib
import random
from collections.abc import Callable

from tests.junkcorpus.world import STREETS

Maker = Callable[[random.Random, str, str, str], tuple[str, str, str, str]]


def _pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def as_html(body: str) -> str:
    paras = "".join(f"<p>{html_lib.escape(p).replace(chr(10), '<br>')}</p>"
                    for p in body.split("\n\n"))
    return ('<html><body><div style="font-family: Calibri, sans-serif">'
            f"{paras}</div></body></html>")


def org_name(domain: str) -> str:
    names = {"mail.northantscalc.org.uk": "Northants CALC", "lists.nalc.gov.uk": "NALC",
             "news.cpre.org.uk": "CPRE Northamptonshire",
             "e.northnorthants.gov.uk": "North Northamptonshire Council"}
    return names.get(domain, domain.split(".")[0].replace("-", " ").title())


# ---------------------------------------------------------------------- residents

_RESIDENT = [
    ("Pothole on {street}", "There is a deep pothole outside number {n} {street}. A cyclist "
     "nearly came off there yesterday evening. Could the council report it to the highways "
     "team, or tell me who I should contact?"),
    ("Street light out", "The street light opposite {n} {street} has not worked for about "
     "two weeks. It is very dark walking back from the bus stop."),
    ("Allotment waiting list", "I would like to put my name down for an allotment. How long is "
     "the waiting list at the moment, and is there a fee?"),
    ("Booking the village hall", "We would like to book the village hall for my daughter's "
     "birthday party on Saturday {n} {month}, 2pm to 5pm. Is it free, and what is the charge?"),
    ("Objection to planning application", "I wish to object to the planning application for "
     "land behind {street}. The lane cannot take the extra traffic and the field floods every "
     "winter. Please could you pass my comments to the planning committee before the meeting."),
    ("Dog fouling on the playing field", "The playing field near the swings is in a terrible "
     "state again. Could the council put up more signs or another bin by the gate?"),
    ("Grass verges", "The verges along {street} have not been cut this year and drivers "
     "cannot see round the bend. Is this the council's job or the county's?"),
    ("Question for the next meeting", "Could I ask a question in the public session of the next "
     "meeting? It is about the speed of traffic through the village at school times."),
    ("Noise from the recreation ground", "There has been loud music from the car park at the "
     "recreation ground late on Friday nights. I have spoken to the police but wondered if the "
     "council could lock the gate at night."),
    ("Thank you", "Just a note to say thank you to whoever organised the litter pick on "
     "Sunday. The village looks lovely. Please pass on my thanks to the volunteers."),
    ("Bench in memory of my father", "My family would like to pay for a memorial bench on "
     "the green for my father, who lived on {street} for forty years. Is there a form to fill "
     "in, and what does it cost?"),
    ("Bus shelter damaged", "The glass in the bus shelter on {street} has been smashed. "
     "I have swept some of it up but there is still glass on the pavement."),
    ("Minutes of the last meeting", "I could not find the minutes of the {month} meeting on "
     "the website. Could you send me a copy, or let me know when they will be published?"),
    ("Hedge overhanging the footpath", "The hedge at the corner of {street} has grown right "
     "across the footpath and people with pushchairs have to walk in the road."),
    ("Fly-tipping", "Someone has dumped a sofa and bags of rubbish in the lay-by on {street}. "
     "Could you forward this to the county council, or pass this on to whoever deals with it?"),
    ("Parking on {street}", "Vans are parking on the pavement every evening. Please forward "
     "this email to the councillors so it can be discussed at the next meeting."),
    ("Fwd: Road closure", "I received the message below about the road closure next month. "
     "Is the council aware? Please share this with everyone who needs to know.\n\n"
     "---------- Forwarded message ----------\nThe road will be closed for resurfacing."),
]
_MONTHS = ["March", "April", "May", "June", "July", "September", "October", "November"]


def resident_message(rng: random.Random, first: str) -> tuple[str, str]:
    subject, text = rng.choice(_RESIDENT)
    street, n, month = rng.choice(STREETS), rng.randrange(1, 60), rng.choice(_MONTHS)
    greeting = _pick(rng, "Dear Clerk,", "Hello,", "Dear Mrs Hale,", "Hi Margaret,",
                     "To whom it may concern,")
    closing = _pick(rng, "Many thanks,", "Kind regards,", "Thanks,", "Best wishes,", "Regards,")
    body = (f"{greeting}\n\n{text.format(street=street, n=n, month=month)}\n\n{closing}\n"
            f"{first}\n{n} {street}\nStanion")
    if rng.random() < 0.3:
        body += "\n\nSent from my iPhone"
    return subject.format(street=street), body


# ---------------------------------------------------------------------- public bodies

def council(rng: random.Random, domain: str, first: str, last: str) -> tuple[str, str, str, str]:
    place = domain.split(".")[0].replace("-pc", "").replace("-", " ").title()
    if domain in ("corby.gov.uk", "northnorthants.gov.uk"):
        name = f"{first} {last}"
        local = f"{first.lower()}.{last.lower().replace(chr(39), '')}"
        topic = _pick(rng, "the consultation on the local plan", "the grass-cutting contract",
                      "the precept for next year", "the highways works on the A6116",
                      "the parish boundary review")
        body = (f"Dear Clerk,\n\nI am writing to all town and parish councils about {topic}. "
                "Details are on our website and responses are due by the end of next month.\n\n"
                f"Kind regards,\n{name}\nTown and Parish Liaison Officer")
        return name, local, f"Town and parish councils: {topic}", body
    name = _pick(rng, f"Clerk to {place} Parish Council", f"{place} Parish Council",
                 f"{first} {last}, Clerk", f"{place} PC Clerk")
    subject, text = rng.choice([
        ("Joint speed watch scheme", "Our council would like to join with yours on a community "
         "speed watch. Would your councillors be willing to discuss it at their next meeting?"),
        ("Shared defibrillator training", "We have booked a defibrillator training evening in "
         "our village hall and have six places left for your residents."),
        ("Footpath between our parishes", "The footpath that runs between our two parishes is "
         "badly overgrown. Shall we write to the county rights of way team together?"),
        ("Clerks' network meeting", "The next meeting of the area clerks' network is on "
         "Thursday at 7pm. The agenda will follow next week."),
    ])
    body = (f"Dear Margaret,\n\n{text}\n\nBest wishes,\n{first} {last}\nClerk to {place} "
            "Parish Council")
    return name, "clerk", subject, body


def police(rng: random.Random, domain: str, first: str, last: str) -> tuple[str, str, str, str]:
    subject, text = rng.choice([
        ("Rural crime update", "There have been reports of thefts of tools from sheds and vans "
         "in the area. Please remind residents to lock outbuildings and mark their property."),
        ("Neighbourhood team surgery", "Your local neighbourhood team will hold a drop-in "
         "surgery at the village hall next Tuesday from 10am to 12 noon."),
        ("Speeding concerns", "Thank you for your council's letter about speeding. We will carry "
         "out speed checks on the main road over the coming weeks."),
    ])
    name = _pick(rng, f"PCSO {first} {last}", "Northamptonshire Police",
                 f"{first} {last} (Neighbourhood Sergeant)")
    body = f"Dear Clerk,\n\n{text}\n\n{name}\nEast Northants Neighbourhood Team"
    return name, f"{first.lower()}.{last.lower().replace(chr(39), '')}", subject, body


def nhs(rng: random.Random, domain: str, first: str, last: str) -> tuple[str, str, str, str]:
    subject, text = rng.choice([
        ("Flu clinics this autumn", "The surgery will run flu clinics on Saturday mornings this "
         "autumn. We would be grateful if the council could mention them in the newsletter."),
        ("Community health event", "We are holding a community health check event and would "
         "like to use the village hall for a morning next month."),
    ])
    body = f"Dear Parish Clerk,\n\n{text}\n\nMany thanks,\n{first} {last}\nPractice Manager"
    return f"{first} {last}", f"{first.lower()}.{last.lower().replace(chr(39), '')}", subject, body


def school(rng: random.Random, domain: str, first: str, last: str) -> tuple[str, str, str, str]:
    subject, text = rng.choice([
        ("Parking at school times", "Parents have raised concerns about parking on the verges "
         "at drop-off. Could the council consider bollards or signs outside the school?"),
        ("Christmas fair", "Our Christmas fair is on the first Saturday of December. Would a "
         "councillor be able to open it? The children would love it."),
        ("Litter pick with year 5", "Year 5 would like to help with the spring litter pick. "
         "Could the council lend us litter pickers and bags?"),
    ])
    name = _pick(rng, f"{first} {last}", "School Office", f"{first} {last} (Headteacher)")
    body = f"Dear Mrs Hale,\n\n{text}\n\nKind regards,\n{first} {last}\nSchool Business Manager"
    return name, _pick(rng, "office", "head", "bursar"), subject, body


def association(rng: random.Random, domain: str, first: str,
                last: str) -> tuple[str, str, str, str]:
    subject, text = rng.choice([
        ("Training: new councillor induction", "Places are available on the new councillor "
         "induction course on the 14th. Please book through the training page."),
        ("Model standing orders updated", "The model standing orders have been updated. "
         "Councils should review theirs at their next meeting."),
        ("Your membership subscription", "Thank you for renewing your council's membership. "
         "A receipt is attached to the members' area of the website."),
        ("Legal topic note on allotments", "Our legal team has published a new legal topic note "
         "on allotments, which members can download from the website."),
    ])
    body = f"Dear Clerk,\n\n{text}\n\nRegards,\n{first} {last}\nMember Services"
    return f"{first} {last}", _pick(rng, "training", "admin", "info"), subject, body


def hmrc(rng: random.Random, domain: str, first: str, last: str) -> tuple[str, str, str, str]:
    if domain.startswith("notifications"):
        body = ("Your PAYE return for the council has been received.\n\nReference: "
                f"{rng.randrange(100, 999)}/PC{rng.randrange(10000, 99999)}\n\n"
                "You can check your business tax account at https://www.gov.uk/log-in-hmrc\n\n"
                "HM Revenue and Customs")
        return "GOV.UK", "noreply", "Your PAYE submission has been received", body
    body = ("Dear employer,\n\nThis is a reminder that your employer payment summary is due by "
            "the 19th of the month. You do not need to reply to this email.\n\n"
            "More information: https://www.gov.uk/running-payroll\n\nHMRC Employer Services")
    return "HMRC", "employer.services", "Employer reminder", body


# ---------------------------------------------------------------------- suppliers and lists

def quote(rng: random.Random, first: str) -> tuple[str, str, str]:
    job = rng.choice(["grass cutting for next season", "the annual play area inspection",
                      "printing the parish newsletter", "replacing the hall's lights",
                      "deep cleaning the village hall", "repairs to the bus shelter"])
    body = (f"Dear Clerk,\n\nThank you for your enquiry about {job}. Please find our quotation "
            "attached. The price is fixed for 60 days and there is no obligation to accept it.\n\n"
            "If you have any questions please call me on the number below.\n\n"
            f"Kind regards,\n{first}\n01536 {rng.randrange(100000, 999999)}")
    return f"Quotation: {job}", body, f"quote-{rng.randrange(1000, 9999)}.pdf"


def newsletter(rng: random.Random, domain: str) -> tuple[str, str, str]:
    org = org_name(domain)
    items = rng.sample(["Funding for village halls", "Consultation on local plan", "Training "
                        "dates for the spring", "Climate action toolkit", "Changes to the "
                        "audit rules", "Awards for community volunteers", "Rural bus services"],
                       3)
    body = f"{org} news\n\n" + "\n\n".join(f"{i}\nRead more on our website." for i in items)
    body += ("\n\nYou are receiving this because your council subscribed. Unsubscribe from "
             "this list.")
    site = domain.partition(".")[2]
    tracker = rng.choice([f"https://click.{domain}/t/", "https://list-manage.example/track?u=",
                          "https://r.mailer-service.example/c/"])
    links = "".join(
        f'<h2>{i}</h2><p><a href="{tracker}{rng.randrange(10**6)}">www.{site}/news</a></p>'
        for i in items)
    html = (f"<html><body><h1>{org} news</h1>{links}<p>View this email "
            f'<a href="https://click.{domain}/view/{rng.randrange(10**6)}">in your browser</a>.</p>'
            f'<p><a href="https://{domain}/unsub">Unsubscribe from this list</a></p></body></html>')
    return f"{org}: {items[0]} and more", body, html


def reply(rng: random.Random, first: str, councillor: str) -> tuple[str, str]:
    subject, text = rng.choice([
        ("Re: Hall booking confirmation", "Thank you, that is all fine. We will collect the key "
         "on Friday afternoon."),
        ("Re: Your complaint about the verge", "Thanks for getting back to me so quickly. I "
         "will look out for the contractor next week."),
        ("Re: Invoice 2291", "Thank you, payment received. I have marked the invoice as paid."),
        ("Re: Meeting next Tuesday", "Yes, Tuesday at 7pm suits me. I will bring the plans."),
        ("Re: Request for a quote", "Of course. I will come out on Monday to measure up and "
         "send the revised price after that."),
        ("Re: Agenda item", "Happy for it to go on the agenda. I can say a few words about "
         "the project if that helps."),
    ])
    hello = f"Hi {councillor.split()[0]}," if rng.random() < 0.5 else f"Dear {councillor},"
    quoted = f"\n\nOn Tuesday, {councillor} wrote:\n> Thank you for your message.\n> Regards"
    return subject, f"{hello}\n\n{text}\n\n{first or 'Thanks'}{quoted}"


# ---------------------------------------------------------------------- junk

def council_phish(rng: random.Random, clerk: str) -> tuple[str, str, str | None]:
    subject, text = rng.choice([
        ("Outstanding invoice for approval", "Please approve the attached supplier payment "
         "before the end of today. The supplier has been waiting since last month."),
        ("Shared document: minutes draft", "The clerk has shared the draft minutes with you. "
         "Sign in with your council email password to view them."),
        ("Updated bank details for the precept", "Please note the council's bank details have "
         "changed. All payments should now go to the new account below."),
        ("Councillor expenses form", "Please complete your expenses claim on the new portal "
         "by Friday or the payment will be delayed."),
    ])
    body = f"Hello,\n\n{text}\n\nRegards,\n{clerk}\nStanion Parish Council"
    html = as_html(body) if rng.random() < 0.5 else None
    return subject, body, html


def invoice_fraud(rng: random.Random, first: str) -> tuple[str, str]:
    subject, text = rng.choice([
        ("Change of bank details", "Please note we have changed our bank. Kindly update your "
         "records and make all future payments, including the invoice due this week, to our "
         "new account: sort code 20-{n}-17, account 4{n}8812."),
        ("Overdue invoice - final notice", "Our records show invoice {n} is now overdue. "
         "To avoid late fees please make payment today to the account on the attached "
         "remittance, which has changed since our last invoice."),
        ("Urgent: payment details updated", "Due to an audit our payment details have been "
         "updated. Please process the outstanding balance to the new account urgently and "
         "confirm by return."),
    ])
    n = rng.randrange(10, 99)
    return subject, f"Dear Clerk,\n\n{text.format(n=n)}\n\nThanks,\n{first}\nAccounts"


def boss_favour(rng: random.Random, who: str) -> tuple[str, str]:
    subject, text = rng.choice([
        ("Quick favour", "Are you at your desk? I need you to get some gift cards for the "
         "volunteers' thank-you event today. I am in a meeting and cannot talk, reply by email."),
        ("Urgent", "I need a payment made to a supplier before 3pm today. I will explain later, "
         "I am tied up in meetings. Can you do a bank transfer now?"),
        ("Are you available?", "I need your help with something confidential. Please reply "
         "with your mobile number, I cannot take calls right now."),
        ("Payment needed today", "Please arrange a transfer of £2,450 to the account I will "
         "send you. It is time sensitive, keep this between us for now."),
    ])
    return subject, f"{text}\n\n{who}\nSent from my mobile"


def link_phish(rng: random.Random) -> tuple[str, str, str]:
    shown, subject, text = rng.choice([
        ("https://www.gov.uk/claim-tax-refund", "You are due a tax refund",
         "Our records show you are due a refund of £412.60. Claim it within 48 hours."),
        ("https://login.microsoftonline.com", "Your password expires today",
         "Your mailbox password expires today. Keep your current password by signing in."),
        ("https://www.barclays.co.uk/business", "Unusual sign-in to your account",
         "We noticed an unusual sign-in. Please confirm your details to avoid suspension."),
        ("https://www.royalmail.com/track", "Your parcel could not be delivered",
         "We could not deliver your parcel. Pay the £1.99 redelivery fee to rebook."),
    ])
    target = f"http://{rng.choice(['secure-verify', 'account-check', 'portal-login'])}." \
             f"{rng.choice(['top', 'xyz', 'click', 'example'])}/{rng.randrange(10**6)}"
    html = (f"<html><body><p>{text}</p><p><a href=\"{target}\">{shown}</a></p>"
            "<p>Thank you.</p></body></html>")
    return subject, f"{text}\n\n{shown}\n\nThank you.", html


def payment_fraud(rng: random.Random, first: str) -> tuple[str, str]:
    subject, text = rng.choice([
        ("Gift cards needed", "Could you purchase six Amazon gift cards of £100 each for a "
         "staff reward? Scratch off the back and send me photos of the codes."),
        ("Outstanding payment", "Please settle the attached invoice by bank transfer today. "
         "The account details have changed so please use the new sort code and account."),
        ("Donation for the community fund", "I represent a charity fund and need a deposit "
         "paid by wire transfer to release £25,000 for your village. Send the fee today."),
        ("iTunes cards", "I need four Apple gift cards for a client today. Buy them at any "
         "shop and email me the codes, I will pay you back tomorrow."),
        ("Invoice query", "We have not received payment for the attached invoice. Our finance "
         "team moved to a new bank in the summer; please use the details on the invoice and "
         "let me know once it has been paid."),
    ])
    return subject, f"Hello,\n\n{text}\n\nRegards,\n{first}"


def chain_letter(rng: random.Random) -> tuple[str, str]:
    subject, text = rng.choice([
        ("FW: FW: Warning to all", "Forward this to everyone in your address book. A new "
         "virus is coming and Microsoft has confirmed it. Do not break the chain."),
        ("Good luck", "This letter has been around the world nine times. Send this to ten "
         "friends within 24 hours or bad luck will follow."),
        ("Please share", "Share this with everyone you know. Bill Gates is giving away money "
         "to everyone who passes this on to ten people."),
    ])
    return subject, text


def advert(rng: random.Random, domain: str) -> tuple[str, str, str]:
    subject, text = rng.choice([
        ("Get your council to page one of Google", "Our SEO services guarantee results. "
         "Increase your sales and visibility with our special promotion this month. Act now."),
        ("Solar panels for your village hall", "Exclusive offer for community buildings: "
         "solar panels at the lowest price, no obligation survey. Limited time offer."),
        ("Office supplies at trade prices", "Cheap printer ink and paper, discount code "
         "PARISH20. Buy now while stocks last. Unsubscribe from this list at any time."),
        ("Boost your website", "You have been selected for a free trial of our website "
         "builder. Guaranteed results or your money back. Order now."),
        ("A new website for your council", "We build accessible websites for parish councils "
         "from £499, hosting included. Reply to this email to book a call with our team."),
        ("Defibrillators for community groups", "We supply defibrillators and cabinets to "
         "villages across the county. Our prices start at £995 and we can deliver next week."),
    ])
    html = (f"<html><body><h1>{subject}</h1><p>{text}</p><p><a href=\"https://{domain}/o\">"
            "See the offer</a></p></body></html>")
    return subject, text, html
