"""The idempotency store, moved here from ``corpus``: state only, the table (made by
corpus 0001) keeps its name."""


import django.utils.timezone
from django.db import migrations, models


def content_type_follows(apps: object, schema_editor: object) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    if not content_type.objects.filter(app_label="api", model="idempotencyrecord").exists():
        content_type.objects.filter(app_label="corpus", model="idempotencyrecord").update(
            app_label="api"
        )


def content_type_back(apps: object, schema_editor: object) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="api", model="idempotencyrecord").update(
        app_label="corpus"
    )


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('corpus', '0004_documentversion_html'),
    ]

    operations = [
        # State only: the tables stay as they are (db_table keeps their names).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='IdempotencyRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('scope', models.CharField(help_text='app:<pk> or user:<pk>', max_length=80)),
                        ('key', models.CharField(max_length=255)),
                        ('fingerprint', models.CharField(max_length=64)),
                        ('state', models.CharField(default='in_flight', max_length=10)),
                        ('status_code', models.PositiveSmallIntegerField(null=True)),
                        ('body', models.JSONField(null=True)),
                        ('headers', models.JSONField(default=dict)),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                    ],
                    options={
                        'db_table': 'corpus_idempotencyrecord',
                        'constraints': [models.UniqueConstraint(fields=('scope', 'key'), name='idempotency_key_per_scope')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_follows, content_type_back, elidable=True),
    ]
