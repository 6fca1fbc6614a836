"""Locust's side of bench/load.sh: each user sends GET / as soon as the last
answer came (a closed model, like `envgate probe --load`), over
geventhttpclient (FastHttpUser, Locust's fastest client)."""
from locust import FastHttpUser, constant, task


class Client(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("/")
