"""Foreign keys to the tenancy models now name ``accounts``: state only, the columns and
their constraints are unchanged."""


import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('tasks', '0005_realtimeticket_access_token'),
    ]

    operations = [
        # State only: the tables stay as they are (db_table keeps their names).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='event',
                    name='org',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='accounts.org'),
                ),
                migrations.AlterField(
                    model_name='harness',
                    name='org',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='harnesses', to='accounts.org'),
                ),
                migrations.AlterField(
                    model_name='harnessapp',
                    name='org',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='harness_apps', to='accounts.org'),
                ),
                migrations.AlterField(
                    model_name='realtimeticket',
                    name='access_token',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.accesstoken'),
                ),
                migrations.AlterField(
                    model_name='task',
                    name='org',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tasks', to='accounts.org'),
                ),
                migrations.AlterField(
                    model_name='task',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='tasks', to='accounts.project'),
                ),
                migrations.AlterField(
                    model_name='task',
                    name='repo',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='tasks', to='accounts.repository'),
                ),
            ],
            database_operations=[],
        ),
    ]
