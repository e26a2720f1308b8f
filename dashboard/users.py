"""The type of a request's user, whatever AUTH_USER_MODEL is."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

# AnonymousUser when nobody is logged in. Staff flags and has_perm are not on every user model (they
# come with PermissionsMixin), so the dashboard reads them with getattr.
User = AbstractBaseUser | AnonymousUser
