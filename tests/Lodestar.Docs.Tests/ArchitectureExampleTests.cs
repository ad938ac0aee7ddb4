using System.Runtime.Loader;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Docs.Tests;

public sealed class ArchitectureExampleTests
{
    [Fact]
    public async Task ExampleSource_AsDocumented_ListsWatchesSkipsBadLinesAndFollowsAChange()
    {
        var block = Assert.Single(DocSnippets.Read("docs/architecture.md"), b => b.Code.Contains("ListWatchEndpointSource", StringComparison.Ordinal));
        var (errors, image) = DocSnippets.Compile(block.Code, "docs/architecture.md:" + block.Line);
        Assert.Empty(errors);
        var type = new AssemblyLoadContext("example", isCollectible: true).LoadFromStream(new MemoryStream(image!)).GetType("LinesSource", throwOnError: true)!;

        var registry = new LinesRegistry("10.0.0.1:8080\n10.0.0.2:8080\nnot an address:x\n", "\"v1\"");
        await using var app = await registry.StartAsync();
        var clock = new RecordingTimeProvider();
        using var http = new HttpClient();
        var source = (IEndpointSource)Activator.CreateInstance(type, "orders", http, new Uri(registry.Url), TimeSpan.FromSeconds(5), clock, NullLogger.Instance)!;
        var observer = new Observer();
        using var cts = new CancellationTokenSource();
        var run = source.RunAsync(observer, cts.Token);

        var first = await observer.Snapshots.Reader.ReadAsync(cts.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(["10.0.0.1:8080", "10.0.0.2:8080"], first.Select(e => e.Address));
        Assert.Contains("not an address", Assert.Single(observer.Errors).Message, StringComparison.Ordinal);

        // Unchanged (304): nothing is published. Then the registry changes and the next round publishes it.
        Assert.Equal(TimeSpan.FromSeconds(5), await clock.NextFiniteTimerAsync());
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(TimeSpan.FromSeconds(5), await clock.NextFiniteTimerAsync());
        Assert.Equal(2, registry.Requests);
        registry.Set("10.0.0.3:8080\n", "\"v2\"");
        clock.Advance(TimeSpan.FromSeconds(5));
        var second = await observer.Snapshots.Reader.ReadAsync(cts.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(["10.0.0.3:8080"], second.Select(e => e.Address));
        Assert.Equal(3, registry.Requests);
        await cts.CancelAsync();
        await run;
    }

    private sealed class Observer : IEndpointObserver
    {
        public System.Threading.Channels.Channel<IReadOnlyList<DiscoveredEndpoint>> Snapshots { get; } = System.Threading.Channels.Channel.CreateUnbounded<IReadOnlyList<DiscoveredEndpoint>>();

        public List<Exception> Errors { get; } = [];

        public void OnEndpoints(IReadOnlyList<DiscoveredEndpoint> endpoints) => Snapshots.Writer.TryWrite([.. endpoints]);

        public void OnError(Exception error) => Errors.Add(error);
    }

    private sealed class LinesRegistry(string body, string etag)
    {
        private readonly Lock _gate = new();
        private (string Body, string ETag) _state = (body, etag);
        private int _requests;

        public string Url { get; private set; } = "";

        public int Requests => Volatile.Read(ref _requests);

        public void Set(string body, string etag)
        {
            lock (_gate)
            {
                _state = (body, etag);
            }
        }

        public async Task<WebApplication> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            app.MapGet("/", (HttpContext context) =>
            {
                Interlocked.Increment(ref _requests);
                (string Body, string ETag) state;
                lock (_gate)
                {
                    state = _state;
                }

                var (body, etag) = state;
                if (context.Request.Headers.IfNoneMatch == etag)
                {
                    return Results.StatusCode(304);
                }

                context.Response.Headers.ETag = etag;
                return Results.Text(body);
            });
            await app.StartAsync();
            Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/";
            return app;
        }
    }
}
