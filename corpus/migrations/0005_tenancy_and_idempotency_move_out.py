"""Tenancy went to ``accounts`` and the idempotency store to ``api``: the corpus app's
state forgets them and its foreign keys name their new home. State only; it runs after
every app that pointed at them has been repointed (tasks 0006), so no state refers to a
model that is gone."""


import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('api', '0001_initial'),
        ('tasks', '0006_tenancy_in_accounts'),
        ('accounts', '0001_initial'),
        ('corpus', '0004_documentversion_html'),
    ]

    operations = [
        # State only: the tables stay as they are (db_table keeps their names).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='accesstoken',
                    name='user',
                ),
                migrations.DeleteModel(
                    name='IdempotencyRecord',
                ),
                migrations.RemoveField(
                    model_name='membership',
                    name='org',
                ),
                migrations.RemoveField(
                    model_name='membership',
                    name='user',
                ),
                migrations.AlterField(
                    model_name='compaction',
                    name='org',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='compactions', to='accounts.org'),
                ),
                migrations.AlterField(
                    model_name='skill',
                    name='org',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='skills', to='accounts.org'),
                ),
                migrations.AlterField(
                    model_name='document',
                    name='org',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='documents', to='accounts.org'),
                ),
                migrations.RemoveField(
                    model_name='repository',
                    name='org',
                ),
                migrations.AlterField(
                    model_name='tool',
                    name='org',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tools', to='accounts.org'),
                ),
                migrations.RemoveField(
                    model_name='project',
                    name='org',
                ),
                migrations.RemoveField(
                    model_name='repository',
                    name='project',
                ),
                migrations.AlterField(
                    model_name='document',
                    name='project',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to='accounts.project'),
                ),
                migrations.AlterField(
                    model_name='document',
                    name='repo',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to='accounts.repository'),
                ),
                migrations.DeleteModel(
                    name='AccessToken',
                ),
                migrations.DeleteModel(
                    name='Membership',
                ),
                migrations.DeleteModel(
                    name='Org',
                ),
                migrations.DeleteModel(
                    name='Project',
                ),
                migrations.DeleteModel(
                    name='Repository',
                ),
            ],
            database_operations=[],
        ),
    ]
