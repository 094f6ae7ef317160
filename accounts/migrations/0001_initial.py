"""Orgs, members, projects, repositories and access tokens, moved here from ``corpus``.

The tables were made by corpus 0001 and keep their names, so this migration only
tells Django's state where the models now live (an existing database keeps its rows)."""


import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


MOVED = ("org", "membership", "project", "repository", "accesstoken")


def content_types_follow(apps: object, schema_editor: object) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not content_type.objects.filter(app_label="accounts", model=model).exists():
            content_type.objects.filter(app_label="corpus", model=model).update(
                app_label="accounts"
            )


def content_types_back(apps: object, schema_editor: object) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="accounts", model__in=MOVED).update(
        app_label="corpus"
    )


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('corpus', '0004_documentversion_html'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # State only: the tables stay as they are (db_table keeps their names).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Org',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('slug', models.SlugField(max_length=64, unique=True)),
                        ('name', models.CharField(max_length=200)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        'db_table': 'corpus_org',
                    },
                ),
                migrations.CreateModel(
                    name='AccessToken',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('label', models.CharField(blank=True, max_length=100)),
                        ('token_hash', models.CharField(max_length=64, unique=True)),
                        ('prefix', models.CharField(help_text='First characters, to recognise a token', max_length=16)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('expires_at', models.DateTimeField(blank=True, null=True)),
                        ('revoked_at', models.DateTimeField(blank=True, null=True)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='access_tokens', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'corpus_accesstoken',
                    },
                ),
                migrations.CreateModel(
                    name='Membership',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='membership', to=settings.AUTH_USER_MODEL)),
                        ('org', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='accounts.org')),
                    ],
                    options={
                        'db_table': 'corpus_membership',
                    },
                ),
                migrations.CreateModel(
                    name='Project',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('slug', models.SlugField(max_length=64)),
                        ('name', models.CharField(max_length=200)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('org', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='projects', to='accounts.org')),
                    ],
                    options={
                        'db_table': 'corpus_project',
                    },
                ),
                migrations.CreateModel(
                    name='Repository',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('full_name', models.CharField(help_text='"owner/name", as on the forge', max_length=200)),
                        ('url', models.URLField(help_text='https://github.com/owner/name', max_length=300)),
                        ('default_branch', models.CharField(default='main', max_length=200)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('org', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='repositories', to='accounts.org')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='repositories', to='accounts.project')),
                    ],
                    options={
                        'verbose_name_plural': 'repositories',
                        'db_table': 'corpus_repository',
                    },
                ),
                migrations.AddConstraint(
                    model_name='project',
                    constraint=models.UniqueConstraint(fields=('org', 'slug'), name='project_slug_per_org'),
                ),
                migrations.AddConstraint(
                    model_name='repository',
                    constraint=models.UniqueConstraint(fields=('org', 'full_name'), name='repo_name_per_org'),
                ),
            ],
            database_operations=[],
        ),
        # Permissions and admin history follow the models to their new app.
        migrations.RunPython(content_types_follow, content_types_back, elidable=True),
    ]
