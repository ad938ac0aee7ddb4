using System.Net;
using System.Text.Json;
using Lodestar.AspNetCore.Admin;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.AspNetCore.Tests.Admin;

/// <summary>
/// A real Kestrel app on 127.0.0.1 that calls service "orders" through Lodestar (a push source over real Kestrel
/// backends) and maps the admin view at <c>/lodestar</c>. Requests with <see cref="RemoteHeader"/> look like they came
/// from a non-loopback address, as they would behind a forwarded-headers middleware.
/// </summary>
internal sealed class AdminApp : IAsyncDisposable
{
    public const string RemoteHeader = "X-Test-Remote";

    private AdminApp(WebApplication app, FakeTimeProvider? clock, PushSourceProvider source, TestBackend[] backends)
    {
        App = app;
        Clock = clock;
        Source = source;
        Backends = backends;
        Orders = app.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        Admin = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
    }

    public WebApplication App { get; }

    /// <summary>Gets the fake clock Lodestar runs on, or <see langword="null"/> when it runs on the system clock.</summary>
    public FakeTimeProvider? Clock { get; }

    public PushSourceProvider Source { get; }

    public TestBackend[] Backends { get; }

    /// <summary>Gets the Lodestar client for "orders".</summary>
    public HttpClient Orders { get; }

    /// <summary>Gets a plain client for the admin view.</summary>
    public HttpClient Admin { get; }

    public string Url { get; private set; } = "";

    public static async Task<AdminApp> StartAsync(int backends = 3, bool fakeClock = true, Action<IServiceCollection>? services = null,
        Action<LodestarAdminOptions>? admin = null, Action<IEndpointConventionBuilder>? conventions = null, Action<WebApplication>? beforeRouting = null)
    {
        var started = new List<TestBackend>();
        for (var i = 0; i < backends; i++)
        {
            started.Add(await TestBackend.StartAsync("b" + i));
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var clock = fakeClock ? new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)) : null;
        if (clock is not null)
        {
            builder.Services.AddSingleton<TimeProvider>(clock);
        }

        var source = new PushSourceProvider();
        builder.Services.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddSingleton<IEndpointSourceProvider>(source);
        builder.Services.AddHttpClient("orders", c => c.Timeout = TimeSpan.FromSeconds(10)).AddLodestar(o =>
        {
            o.Source = "push";
            o.MaxAttempts = 1; // no retry backoff: it would wait on the fake clock
        });
        services?.Invoke(builder.Services);
        var app = builder.Build();
        app.Use((context, next) =>
        {
            if (context.Request.Headers.ContainsKey(RemoteHeader))
            {
                context.Connection.RemoteIpAddress = IPAddress.Parse("203.0.113.7");
            }

            return next(context);
        });
        beforeRouting?.Invoke(app);
        var mapped = app.MapLodestarAdmin("/lodestar", admin);
        conventions?.Invoke(mapped);
        var result = new AdminApp(app, clock, source, [.. started]);
        await app.StartAsync();
        result.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');

        // The source starts with the first request to the service; it waits for the first set.
        var first = result.CallAsync(1);
        await source.PublishAsync("orders", [.. started.Select(b => DiscoveredEndpoint.Create("127.0.0.1", b.Port))]);
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        return result;
    }

    /// <summary>Sends requests to "orders" through Lodestar, ignoring their outcome.</summary>
    public async Task CallAsync(int requests)
    {
        for (var i = 0; i < requests; i++)
        {
            try
            {
                using var response = await Orders.GetAsync("http://orders/");
            }
            catch (HttpRequestException)
            {
            }
        }
    }

    /// <summary>Gets the admin API's JSON.</summary>
    public async Task<JsonElement> GetJsonAsync(string? service = null)
    {
        var body = await Admin.GetStringAsync(Url + "/lodestar/api" + (service is null ? "" : "?service=" + service));
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>Gets an endpoint of "orders" from the admin API.</summary>
    public async Task<JsonElement> GetEndpointAsync(TestBackend backend)
    {
        var json = await GetJsonAsync("orders");
        return json.GetProperty("services")[0].GetProperty("endpoints").EnumerateArray()
            .Single(e => e.GetProperty("address").GetString() == "127.0.0.1:" + backend.Port);
    }

    /// <summary>Gets the kinds of the events about an endpoint (or every event), oldest first.</summary>
    public static string[] EventKinds(JsonElement json, TestBackend? backend = null)
        => [.. json.GetProperty("events").EnumerateArray()
            .Where(e => backend is null || e.GetProperty("endpoint").GetString() == "127.0.0.1:" + backend.Port)
            .Select(e => e.GetProperty("kind").GetString()!)];

    /// <summary>Advances the fake clock in one-second steps, so that every timer due on the way fires in order.</summary>
    public void Advance(TimeSpan total)
    {
        for (var elapsed = TimeSpan.Zero; elapsed < total; elapsed += TimeSpan.FromSeconds(1))
        {
            Clock!.Advance(TimeSpan.FromSeconds(1));
        }
    }

    public async ValueTask DisposeAsync()
    {
        Admin.Dispose();
        await App.DisposeAsync();
        foreach (var backend in Backends)
        {
            await backend.DisposeAsync();
        }
    }
}
