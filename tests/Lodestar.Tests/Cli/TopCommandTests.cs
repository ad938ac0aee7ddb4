using System.Net;
using System.Text.Json;
using Lodestar.Cli.Demo;
using Lodestar.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Tests.Cli;

public sealed class TopCommandTests
{
    [Fact]
    public async Task Top_NotATerminal_PrintsOneTableOfTheCalledServices()
    {
        // Arrange
        await using var app = await AdminTarget.StartAsync();
        using var cli = new CliHarness();

        // Act
        var result = await cli.RunAsync("top", "--url", app.AdminUrl);

        // Assert
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("orders", result.Out, StringComparison.Ordinal);
        Assert.Contains("source configuration", result.Out, StringComparison.Ordinal);
        foreach (var backend in app.Backends)
        {
            Assert.Contains(backend.Address, result.Out, StringComparison.Ordinal);
        }

        Assert.Contains("healthy", result.Out, StringComparison.Ordinal);
        Assert.Contains("2/2 healthy", result.Out, StringComparison.Ordinal);
        Assert.Contains("EndpointAdded", result.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", result.Out, StringComparison.Ordinal); // no escape codes into a pipe
    }

    [Fact]
    public async Task Top_OutputJson_DumpsTheAdminApiAnswerOnce()
    {
        // Arrange
        await using var app = await AdminTarget.StartAsync();
        using var cli = new CliHarness();

        // Act
        var result = await cli.RunAsync("top", "--url", app.AdminUrl + "/", "--service", "orders", "-o", "json");

        // Assert
        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.Out);
        var service = Assert.Single(json.RootElement.GetProperty("services").EnumerateArray());
        Assert.Equal("orders", service.GetProperty("service").GetString());
        Assert.Equal(2, service.GetProperty("endpoints").GetArrayLength());
        Assert.Equal(4, service.GetProperty("endpoints").EnumerateArray().Sum(e => e.GetProperty("requests").GetInt64()));
    }

    [Fact]
    public async Task Top_NothingListening_FailsWithOneLineNamingTheUrlWithoutItsPassword()
    {
        // Arrange
        using var cli = new CliHarness();
        var port = LoopbackPorts.Free(1)[0];

        // Act
        var result = await cli.RunAsync("top", "--url", $"http://admin:hunter22@127.0.0.1:{port}/lodestar");

        // Assert
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("cannot reach the admin API at http://127.0.0.1:" + port + "/lodestar/api", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter22", result.All, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Top_NotAnHttpUrl_FailsNamingTheOption()
    {
        // Arrange
        using var cli = new CliHarness();

        // Act
        var result = await cli.RunAsync("top", "--url", "orders");

        // Assert
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--url 'orders' is not an http or https URL", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Demo_AdminPort_ServesTheDemoClientOnTheAdminPage()
    {
        // Arrange
        var options = new DemoOptions { Instances = 2, Duration = TimeSpan.FromSeconds(5), Rps = 40, Concurrency = 2, Json = true, AdminPort = 0 };
        await using var runner = new DemoRunner(options);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        // Act
        var run = runner.RunAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => runner.AdminUrl is not null, TimeSpan.FromSeconds(20), "the admin page starts");
        JsonElement service = default;
        await Eventually.TrueAsync(async () =>
        {
            using var json = JsonDocument.Parse(await http.GetStringAsync(runner.AdminUrl + "/api"));
            var services = json.RootElement.GetProperty("services");
            if (services.GetArrayLength() == 0)
            {
                return false;
            }

            service = services[0].Clone();
            return service.GetProperty("endpoints").EnumerateArray().Any(e => e.GetProperty("requests").GetInt64() > 0);
        }, TimeSpan.FromSeconds(20), "the demo's traffic shows");
        var page = await http.GetStringAsync(runner.AdminUrl);
        await run;

        // Assert
        Assert.Equal(DemoRunner.ServiceName, service.GetProperty("service").GetString());
        Assert.Contains("<title>Lodestar</title>", page, StringComparison.Ordinal);
    }

    /// <summary>A Kestrel app on 127.0.0.1 that has called "orders" (two real backends) four times and maps the admin view.</summary>
    private sealed class AdminTarget : IAsyncDisposable
    {
        private AdminTarget(WebApplication app, TestBackend[] backends, string url)
        {
            App = app;
            Backends = backends;
            AdminUrl = url;
        }

        public WebApplication App { get; }

        public TestBackend[] Backends { get; }

        public string AdminUrl { get; }

        public static async Task<AdminTarget> StartAsync()
        {
            TestBackend[] backends = [await TestBackend.StartAsync("a"), await TestBackend.StartAsync("b")];
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
            builder.Configuration["Lodestar:Services:orders:Endpoints:0"] = backends[0].Address;
            builder.Configuration["Lodestar:Services:orders:Endpoints:1"] = backends[1].Address;
            builder.Services.AddLodestar();
            builder.Services.AddHttpClient("orders").AddLodestar();
            var app = builder.Build();
            app.MapLodestarAdmin();
            await app.StartAsync();
            var client = app.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
            for (var i = 0; i < 4; i++)
            {
                using var response = await client.GetAsync("http://orders/");
                response.EnsureSuccessStatusCode();
            }

            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
            return new AdminTarget(app, backends, address + "/lodestar");
        }

        public async ValueTask DisposeAsync()
        {
            await App.DisposeAsync();
            foreach (var backend in Backends)
            {
                await backend.DisposeAsync();
            }
        }
    }
}
