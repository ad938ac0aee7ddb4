using System.CommandLine;
using System.Globalization;
using Lodestar.Cli.Demo;
using Lodestar.LoadBalancing;
using Spectre.Console;

namespace Lodestar.Cli.Commands;

/// <summary><c>lodestar demo</c>: the main job, on the embedded configuration source.</summary>
internal static class DemoCommand
{
    private static readonly Option<string> Policy = new("--policy")
    {
        Description = "Load-balancing policy: round-robin, random, least-request, weighted-round-robin, peak-ewma, ring-hash or maglev.",
        DefaultValueFactory = _ => LoadBalancingPolicies.RoundRobin,
    };

    private static readonly Option<int> Instances = new("--instances") { Description = "Backend instances (2-20).", DefaultValueFactory = _ => 5 };
    private static readonly Option<int> Duration = new("--duration") { Description = "Seconds of load (5-600).", DefaultValueFactory = _ => 30 };
    private static readonly Option<int> Rps = new("--rps") { Description = "Requests per second (1-5000).", DefaultValueFactory = _ => 200 };
    private static readonly Option<int> Concurrency = new("--concurrency") { Description = "Concurrent requests at most (1-256).", DefaultValueFactory = _ => 16 };
    private static readonly Option<bool> Http2 = new("--http2") { Description = "Use HTTP/2 (cleartext, prior knowledge) between client and backends." };
    private static readonly Option<bool> Grpc = new("--grpc")
    {
        Description = "Send unary gRPC calls through a lodestar:/// channel and a Lodestar gRPC balancer (HTTP/2) instead of HTTP requests; policies round-robin, least-request, peak-ewma or ring-hash.",
    };

    private static readonly Option<bool> Json = new("--json") { Description = "Print one JSON object with the results and nothing else on stdout." };
    private static readonly Option<int> MetricsPort = new("--metrics-port") { Description = "Port of the demo's /metrics endpoint on 127.0.0.1 (0 = any free port).", DefaultValueFactory = _ => 0 };
    private static readonly Option<int?> AdminPort = new("--admin-port") { Description = "Serve the demo client's admin page at http://127.0.0.1:<port>/lodestar (0 = any free port); off unless given." };

    public static Command Create()
    {
        var command = new Command("demo", "Start backends on 127.0.0.1, balance load over them while one slows down, all restart and one is killed, and show what happened.");
        foreach (var option in new Option[] { Policy, Instances, Duration, Rps, Concurrency, Http2, Grpc, Json, MetricsPort, AdminPort })
        {
            command.Options.Add(option);
        }

        command.SetAction(RunAsync);
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var options = new DemoOptions
        {
            Policy = parseResult.GetValue(Policy)!,
            Instances = Check(parseResult.GetValue(Instances), 2, 20, "--instances"),
            Duration = TimeSpan.FromSeconds(Check(parseResult.GetValue(Duration), 5, 600, "--duration")),
            Rps = Check(parseResult.GetValue(Rps), 1, 5000, "--rps"),
            Concurrency = Check(parseResult.GetValue(Concurrency), 1, 256, "--concurrency"),
            Http2 = parseResult.GetValue(Http2),
            Grpc = parseResult.GetValue(Grpc),
            Json = parseResult.GetValue(Json),
            MetricsPort = Check(parseResult.GetValue(MetricsPort), 0, 65535, "--metrics-port"),
            AdminPort = parseResult.GetValue(AdminPort) is { } adminPort ? Check(adminPort, 0, 65535, "--admin-port") : null,
        };

        if (options.Grpc && DemoGrpc.BalancerFor(options.Policy) is null)
        {
            throw new CliException($"--policy is '{options.Policy}', which has no gRPC balancer; with --grpc use one of {string.Join(", ", DemoGrpc.Policies)}.");
        }

        await using var runner = new DemoRunner(options);
        var interactive = !options.Json && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        using var progressStop = new CancellationTokenSource();
        var run = runner.RunAsync(cancellationToken);
        if (interactive)
        {
            await AnsiConsole.Live(DemoReport.LiveView(runner)).AutoClear(true).StartAsync(async ctx =>
            {
                while (!run.IsCompleted)
                {
                    ctx.UpdateTarget(DemoReport.LiveView(runner));
                    await Task.WhenAny(run, Task.Delay(250, CancellationToken.None));
                }
            });
            await run;
            DemoReport.WriteSummary(runner);
        }
        else
        {
            // Not a terminal (CI, pipes): plain lines every few seconds; with --json they go to stderr.
            var progress = options.Json ? Console.Error : Console.Out;
            var adminShown = options.AdminPort is null;
            while (!run.IsCompleted)
            {
                await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(adminShown ? 5 : 0.25), CancellationToken.None));
                if (!adminShown)
                {
                    // Said as soon as it listens, so that a browser or `lodestar top` can follow the whole run.
                    if (runner.AdminUrl is { } admin)
                    {
                        adminShown = true;
                        await progress.WriteLineAsync("admin page at " + admin);
                    }

                    continue;
                }

                await progress.WriteLineAsync(DemoReport.PlainLine(runner));
            }

            await run;
            foreach (var line in runner.RecentEvents(100))
            {
                await progress.WriteLineAsync("  " + line);
            }

            if (options.Json)
            {
                Console.Out.WriteLine(DemoReport.Json(runner));
            }
            else
            {
                await progress.WriteLineAsync(DemoReport.PlainLine(runner));
            }
        }

        return runner.Stats.Failed == 0 ? 0 : 1;
    }

    private static int Check(int value, int min, int max, string name)
        => value >= min && value <= max
            ? value
            : throw new CliException(string.Create(CultureInfo.InvariantCulture, $"{name} is {value}; it must be between {min} and {max}."));
}
