"""Flask-AppBuilder msgids that portal users see, listed for extraction only.

Never imported. ``make babel-extract`` reads this file (see ``babel.cfg``) so these
msgids stay in ``messages.pot`` and their zh translations in our ``messages.po``
survive ``pybabel update``. Flask-Babel merges FAB's catalogue first and ours
after it, so each entry here overrides FAB's 2015 zh catalogue (missing, fuzzy or
off-glossary entries) and pins the wording of the login page, navbar, list/show/
form widgets, flash messages and the account pages.

Every string must be a msgid FAB 5.3 really uses (in its templates or in a
``lazy_gettext``/``gettext``/``_`` call, spelled exactly, trailing space included);
``tests/integration/test_translations.py`` checks that. To add one: put it here,
run ``make babel-extract``, then translate it (``tools/fill_zh.py`` fills the ones
it knows) and ``make translations``.
"""


def _(message: str) -> str:
    return message


# Login page and navbar (AuthDBView, login_db.html, navbar_right.html, index.html)
LOGIN_AND_NAVBAR = [
    _("Login"),
    _("Logout"),
    _("Profile"),
    _("Sign In"),
    _("Enter your login and password below"),
    _("Username"),
    _("Password"),
    _("Register"),
    _("If you are not already a user, please register"),
    _("Invalid login. Please try again."),
    _("Access is Denied"),
    _("Welcome"),
]

# List, show and form widgets (general/lib.html, widgets/*.html, messages.py)
WIDGETS = [
    _("Search"),
    _("Add Filter"),
    _("Record Count"),
    _("Actions"),
    _("Page size"),
    _("Order by"),
    _("Add"),
    _("Add a new record"),
    _("Edit"),
    _("Edit record"),
    _("Show"),
    _("Show record"),
    _("Delete"),
    _("Delete record"),
    _("Are you sure you want to delete this item?"),
    _("User confirmation needed"),
    _("No records found"),
    _("Detail"),
    _("Back"),
    _("Save"),
    _("Select Value"),
]

# Search filters (models/sqla/filters.py, models/generic/filters.py)
FILTERS = [
    _("Contains"),
    _("Contains (insensitive)"),
    _("Not Contains"),
    _("Equal to"),
    _("Not Equal to"),
    _("Greater than"),
    _("Smaller than"),
    _("Start with"),
    _("Starts with"),
    _("Not Starts with"),
    _("Ends with"),
    _("Not Ends with"),
    _("In"),
    _("Not In"),
    _("Relation"),
    _("No Relation"),
    _("Relation as Many"),
]

# Flash and validation messages (baseviews.py, fields.py, messages.py, validators.py)
MESSAGES = [
    _("Added Row"),
    _("Changed Row"),
    _("Deleted Row"),
    _("Associated data exists, please delete them first"),
    _("Integrity error, probably unique constraint"),
    _("Database Error"),
    _("Not a valid choice"),
    _("This field is required."),
    _("Not a valid date value"),
    _("Already exists."),
    _("Invalid file extension"),
]

# The user's own account pages (security/views.py, security/forms.py)
ACCOUNT = [
    _("User info"),
    _("Your user information"),
    _("Personal Info"),
    _("Audit Info"),
    _("Edit User"),
    _("Edit User Information"),
    _("User information changed"),
    _("Reset my password"),
    _("Reset Password"),
    _("Reset Password Form"),
    _("Password Changed"),
    _("Confirm Password"),
    _("Please rewrite the password to confirm"),
    _("Passwords must match"),
    _("Please use a good password policy, this application does not check this for you"),
    _("User Name"),
    _("First Name"),
    _("Last Name"),
    _("Full Name"),
    _("Email"),
    _("Write the user first name or names"),
    _("Write the user last name"),
    _("Is Active?"),
    _("Role"),
    _("Last login"),
    _("Login count"),
    _("Failed login count"),
    _("Created on"),
    _("Created by"),
    _("Changed on"),
    _("Changed by"),
]

# FAB's security menu and user/role admin (security/manager.py, security/views.py).
# FAB's "Group" is a set of users with roles, translated 用户组 to keep it apart
# from 志愿团体. FAB's bare "Groups" label (user form) is left out on purpose: the
# glossary gives "Groups" -> 志愿团体 for the portal's own menu, and one msgid
# cannot carry both meanings.
SECURITY_ADMIN = [
    _("Security"),
    _("List Users"),
    _("Show User"),
    _("Add User"),
    _("List Roles"),
    _("Show Role"),
    _("Add Role"),
    _("Edit Role"),
    _("Copy Role"),
    _("Copy the selected roles?"),
    _("Name"),
    _("Permissions"),
    _("List Groups"),
    _("Show Group"),
    _("Add Group"),
    _("Edit Group"),
    _("Either select a role or a group"),
    _("User(s) exists in the role, cannot delete"),
    _("User(s) exists in the group, cannot delete"),
    _("User's Statistics"),
    _("User Statistics"),
    _("User Registrations"),
    _("The user's password for authentication"),
    _("Please rewrite the user's password to confirm"),
    _("It's not a good policy to remove a user, just make it inactive"),
    _("Username valid for authentication on DB or LDAP, unused for OID auth"),
    _("The user's email, this will also be used for OID auth"),
]
