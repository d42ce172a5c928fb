/*
  Forces one schedule of the deinit / handle_terminated race on the real
  WFWebSocketClient of sogou/workflow (branch websocket), built with the timing
  hooks of 02-timing-hooks.patch. See README.md for the schedules.

  usage: [POLLER_THREADS=N] driver SCHEDULE
  SCHEDULE: R1 R2 R2-as-is R2-late H6 wake-deinit C-deinit C-peer (README.md)

  Exit status: 0 the schedule was forced and the program survived it;
  3 the schedule could not be forced (a pause ran out: see the "not forced" line);
  4 setup failed (listen, connect, upgrade or first send). A sanitizer that fires
  ends the process with its own exit code (run.sh sets 66).

  The hook is a weak symbol in workflow; it is defined here. It never touches the
  object it is given. A pause polls relaxed atomics and sleeps: it orders the
  threads in time only, and gives ThreadSanitizer no happens-before edge, so a
  use after free that the pause makes happen is still seen as unsynchronised.
*/

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>

#include "workflow/WFFacilities.h"
#include "workflow/WFWebSocketClient.h"

namespace {

/* Every point the hooks and the driver report. */
const char *const kPoints[] = {
	"terminate.enter",   // handle_terminated(): the reader saw the peer end TCP
	"terminate.took",    // handle_terminated() took the token
	"terminate.queued",  // handle_terminated() found the token busy: queued a waiter
	"deinit.took",       // deinit() took the token
	"deinit.queued",     // deinit() found the token busy: queued a waiter
	"done.released",     // WFComplexChannel::done(): released the token, signalled
	"waiter.continue",   // a woken waiter's deferred continuation (0 ms timer) starts
	"deinit.deleted",    // the channel was deleted (deinit's series callback, or deinit() itself)
	"user.close",        // the user's close callback runs
	"driver.peer-ended", // the local peer ended TCP
	"driver.deinit-returned",  // client.deinit() returned to the driver
};
constexpr int kNumPoints = sizeof kPoints / sizeof kPoints[0];

std::atomic<int> g_count[kNumPoints];
std::atomic<int> g_seq{0};
std::atomic<bool> g_armed{false};
std::atomic<bool> g_unforced{false};

int point_index(const char *point)
{
	for (int i = 0; i < kNumPoints; i++)
		if (strcmp(kPoints[i], point) == 0)
			return i;
	return -1;
}

long thread_tag()
{
	return (long)(std::hash<std::thread::id>()(std::this_thread::get_id()) % 1000);
}

void record(const char *point)
{
	int i = point_index(point);
	if (i >= 0)
		g_count[i].fetch_add(1, std::memory_order_relaxed);
	int seq = g_seq.fetch_add(1, std::memory_order_relaxed) + 1;
	dprintf(2, "hook %2d  %-24s thread %03ld\n", seq, point, thread_tag());
}

bool seen(const char *point)
{
	return g_count[point_index(point)].load(std::memory_order_relaxed) > 0;
}

/* Wait, by polling, until `point` has been recorded; at most timeout_ms. */
bool pause_until(const char *point, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited++)
	{
		if (seen(point))
			return true;
		usleep(1000);
	}
	return seen(point);
}

/* One schedule: where threads pause, and what the driver does once the
   connection is up. The table is chosen in main() before any workflow thread
   exists, so the hooks read it without a race. */
struct Rule
{
	const char *at;     // a thread reaching this point...
	const char *until;  // ...waits until this point was recorded
};

struct Schedule
{
	const char *name;
	Rule rules[2];         // unused entries have at == nullptr
	bool deinit_in_close;  // the user's close callback calls deinit() (H6)
	bool move_waiter_timer;  // keep deinit's waiter timer off the connection's poller (R2)
	void (*act)();
};

const Schedule *g_schedule;
constexpr int kPauseMs = 3000;

void not_forced(const std::string& why)
{
	g_unforced.store(true, std::memory_order_relaxed);
	dprintf(2, "not forced: %s\n", why.c_str());
}

}  // namespace

extern "C" void wschan_hook(const char *point, const void *)
{
	if (!g_armed.load(std::memory_order_relaxed))
		return;

	record(point);
	for (const Rule& rule : g_schedule->rules)
	{
		if (!rule.at || strcmp(rule.at, point) != 0)
			continue;
		dprintf(2, "         pause at %s until %s\n", point, rule.until);
		if (!pause_until(rule.until, kPauseMs))
			not_forced(std::string("at ") + point + ", " + rule.until +
					   " did not happen within 3 s");
	}
}

namespace {
/* The local peer: one WebSocket upgrade on 127.0.0.1, then it reads and drops
   frames until the driver ends TCP. */
class Peer
{
public:
	int listen()
	{
		lfd = socket(AF_INET, SOCK_STREAM, 0);
		sockaddr_in addr{};
		addr.sin_family = AF_INET;
		addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof addr;
		if (lfd < 0 || bind(lfd, (sockaddr *)&addr, len) < 0 ||
			::listen(lfd, 1) < 0 || getsockname(lfd, (sockaddr *)&addr, &len) < 0)
			return -1;
		thread = std::thread(&Peer::serve, this);
		return ntohs(addr.sin_port);
	}

	/* The peer ends TCP: FIN to the client, whose reader then sees EOF. */
	void end_tcp()
	{
		int fd = cfd.load();
		if (fd >= 0)
			::shutdown(fd, SHUT_RDWR);
		record("driver.peer-ended");
	}

	void join()
	{
		end_tcp();
		if (thread.joinable())
			thread.join();
		close(lfd);
	}

private:
	void serve()
	{
		int fd = accept(lfd, nullptr, nullptr);
		if (fd < 0)
			return;
		cfd.store(fd);

		std::string request;
		char buf[4096];
		while (request.find("\r\n\r\n") == std::string::npos)
		{
			ssize_t n = read(fd, buf, sizeof buf);
			if (n <= 0 || request.size() > 16384)
				return;
			request.append(buf, n);
		}
		/* Workflow sends the fixed key "dGhlIHNhbXBsZSBub25jZQ==" and checks for
		   this fixed accept value. The 50 ms delay only avoids hazard H1 (a 101
		   that arrives before the upgrade's waiter is registered is missed and
		   the first send hangs); it is not part of the race under test. */
		usleep(50000);
		static const char response[] =
			"HTTP/1.1 101 Switching Protocols\r\n"
			"Upgrade: websocket\r\n"
			"Connection: Upgrade\r\n"
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
		if (write(fd, response, sizeof response - 1) < 0)
			return;
		while (read(fd, buf, sizeof buf) > 0)
			;
		close(fd);
	}

	int lfd = -1;
	std::atomic<int> cfd{-1};
	std::thread thread;
};

Peer g_peer;
WebSocketClient *g_client;
WFFacilities::WaitGroup g_closed(1);

void deinit_from_driver()
{
	g_client->deinit();
	record("driver.deinit-returned");
}

void wait_or_not_forced(const char *point)
{
	if (!pause_until(point, kPauseMs))
		not_forced(std::string(point) + " did not happen within 3 s");
}

void r2()
{
	g_peer.end_tcp();
	wait_or_not_forced("terminate.took");
	deinit_from_driver();
	if (!seen("deinit.queued"))
		not_forced("deinit() did not queue a waiter");
	wait_or_not_forced("deinit.deleted");
}

/* In R2, deinit's waiter timer is the third timer of the process (the first
   two: the upgrade's waiter and the first send's switch timer; gdb on
   mpoller_add_timer, README.md), and a timer goes to poller
   timers_so_far % poller_threads. On the connection's own poller it could not
   fire while terminate is inside done(). If that is where it would go, start
   one timer of our own first, as any program may: the waiter's becomes the
   fourth and goes to the next poller. */
constexpr int kWaiterTimer = 2;

void move_waiter_timer(int conn_poller, int pollers)
{
	if (conn_poller != kWaiterTimer % pollers)
		return;

	std::promise<void> fired;
	WFTaskFactory::create_timer_task(0, 0, [&fired](WFTimerTask *) {
		fired.set_value();
	})->start();
	fired.get_future().wait_for(std::chrono::seconds(3));
	dprintf(2, "setup: one timer of our own first: deinit's waiter timer goes to poller %d\n",
			(kWaiterTimer + 1) % pollers);
}

/* The poller thread that owns the connection: workflow puts fd on poller
   fd % poller_threads (mpoller_add). Found from outside, by the peer's port. */
int connection_poller(int port, int pollers)
{
	for (int fd = 0; fd < 1024; fd++)
	{
		sockaddr_in peer{};
		socklen_t len = sizeof peer;
		if (getpeername(fd, (sockaddr *)&peer, &len) == 0 &&
			peer.sin_family == AF_INET && ntohs(peer.sin_port) == port)
		{
			dprintf(2, "setup: the connection is fd %d: poller %d of %d\n",
					fd, fd % pollers, pollers);
			return fd % pollers;
		}
	}
	return -1;
}

/* The comments give the order the hooks then show; README.md puts it beside
   the explorer's steps. */
const Schedule kSchedules[] = {
	/* The reader sees EOF and enters handle_terminated(); deinit() takes the
	   token and shuts down first; terminate queues a waiter; the shutdown
	   completes, done() signals the waiter, deinit's series deletes the
	   channel; only then does the waiter's continuation read it. */
	{"R1", {{"terminate.enter", "driver.deinit-returned"},
			{"waiter.continue", "deinit.deleted"}}, false, false, [] {
		g_peer.end_tcp();
		wait_or_not_forced("terminate.enter");
		deinit_from_driver();
		wait_or_not_forced("waiter.continue");
	}},
	/* handle_terminated() takes the token; deinit() queues a waiter; the
	   shutdown completes in terminate's series and done() signals deinit's
	   waiter; terminate is still inside done() while the waiter's
	   continuation sees established == 0 and deinit's series deletes. */
	{"R2", {{"terminate.took", "driver.deinit-returned"},
			{"done.released", "deinit.deleted"}}, false, true, r2},
	/* The same without moving deinit's waiter timer: when it lands on the
	   connection's poller, R2 cannot happen (README.md). */
	{"R2-as-is", {{"terminate.took", "driver.deinit-returned"},
				  {"done.released", "deinit.deleted"}}, false, false, r2},
	/* The explorer's shortest R2: terminate has released the token and
	   established is 0; deinit() comes now, while terminate is still inside
	   done(). The C++ deinit() sees established == 0 and deletes at once. */
	{"R2-late", {{"done.released", "deinit.deleted"}}, false, false, [] {
		g_peer.end_tcp();
		wait_or_not_forced("done.released");
		deinit_from_driver();
	}},
	/* H6, upstream issue 1258: deinit() from the user's close callback, which
	   runs inside done() under the channel mutex. No pause. */
	{"H6", {}, true, false, [] {
		g_peer.end_tcp();
		wait_or_not_forced("deinit.deleted");
	}},
	/* No pause: the peer ends TCP, the close callback wakes the driver's
	   thread (a WaitGroup), which calls deinit() at once: what a program does
	   that tears the client down when told the connection closed. */
	{"wake-deinit", {}, false, false, [] {
		g_peer.end_tcp();
		if (g_closed.wait(kPauseMs) != std::future_status::ready)
			not_forced("the close callback did not run within 3 s");
		deinit_from_driver();
	}},
	/* Control: deinit() with the peer quiet. The model says safe. */
	{"C-deinit", {}, false, false, [] {
		deinit_from_driver();
		wait_or_not_forced("deinit.deleted");
	}},
	/* Control: the peer ends TCP; deinit() only 200 ms after the close
	   callback, when terminate's series is long over. The model says safe. */
	{"C-peer", {}, false, false, [] {
		g_peer.end_tcp();
		wait_or_not_forced("user.close");
		usleep(200000);
		deinit_from_driver();
	}},
};

}  // namespace

int main(int argc, char *argv[])
{
	for (const Schedule& schedule : kSchedules)
		if (argc == 2 && strcmp(argv[1], schedule.name) == 0)
			g_schedule = &schedule;
	if (!g_schedule)
	{
		fprintf(stderr, "usage: %s R1|R2|R2-as-is|R2-late|H6|wake-deinit|C-deinit|C-peer\n", argv[0]);
		return 2;
	}

	/* The number of poller threads is a public setting (default 4). */
	WFGlobalSettings settings = GLOBAL_SETTINGS_DEFAULT;
	if (const char *pollers = getenv("POLLER_THREADS"))
		settings.poller_threads = atoi(pollers);
	WORKFLOW_library_init(&settings);

	int port = g_peer.listen();
	if (port < 0)
	{
		perror("listen on 127.0.0.1");
		return 4;
	}

	WebSocketClient client(
		[](WFWebSocketTask *) { },
		[]() {
			record("user.close");
			g_closed.done();
			if (g_schedule->deinit_in_close)
				deinit_from_driver();
		});
	g_client = &client;
	if (client.init("ws://127.0.0.1:" + std::to_string(port) + "/") < 0)
		return 4;

	/* Connect, upgrade and send one frame: established == 1 afterwards. */
	std::promise<int> sent;
	WFWebSocketTask *task = client.create_websocket_task([&sent](WFWebSocketTask *t) {
		sent.set_value(t->get_state());
	});
	task->get_msg()->set_text_data("hello");
	task->start();
	auto result = sent.get_future();
	if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready ||
		result.get() != WFT_STATE_SUCCESS)
	{
		fprintf(stderr, "setup: the first send did not complete\n");
		return 4;
	}

	int conn_poller = connection_poller(port, settings.poller_threads);
	if (g_schedule->move_waiter_timer)
		move_waiter_timer(conn_poller, settings.poller_threads);

	g_armed = true;
	g_schedule->act();
	/* Let every series that is still running finish before the summary. */
	usleep(300000);

	bool forced = !g_unforced.load();
	dprintf(2, "schedule %s: %s\n", g_schedule->name,
			forced ? "forced, survived" : "not forced");
	g_peer.join();
	return forced ? 0 : 3;
}
