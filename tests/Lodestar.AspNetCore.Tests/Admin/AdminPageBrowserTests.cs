using Lodestar.Diagnostics;
using Lodestar.Health;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Lodestar.AspNetCore.Tests.Admin;

/// <summary>The admin page in a real browser: Debian's chromium driven by Playwright (no browser download).</summary>
public sealed class AdminPageBrowserTests
{
    private static readonly LocatorAssertionsToContainTextOptions s_wait = new() { Timeout = 20_000 };

    [Fact]
    public async Task AdminPage_BackendKilledAndBack_TableAndEventsFollowAndScreenshotIsSaved()
    {
        // Arrange: three real backends; a killed one is ejected on its first connect failures and may return after 4 s.
        await using var app = await AdminApp.StartAsync(fakeClock: false, services: s => s.Configure<OutlierDetectionOptions>("orders", o =>
        {
            o.Interval = TimeSpan.FromMilliseconds(500);
            o.BaseEjectionTime = TimeSpan.FromSeconds(4);
            o.MaxEjectionPercent = 34;
        }), admin: o => o.PageRefreshInterval = TimeSpan.FromMilliseconds(500));
        using var load = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var traffic = SendLoadAsync(app, load.Token);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath(),
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1500, Height = 720 } });
        var victim = app.Backends[1];
        var row = page.Locator($"tr[data-address='{victim.Address}']");

        // Act + Assert: the page shows every endpoint healthy, in a table with row and column headers.
        await page.GotoAsync(app.Url + "/lodestar");
        await Assertions.Expect(page.Locator("caption")).ToContainTextAsync("orders: 3 of 3 endpoints healthy", s_wait);
        Assert.Equal(12, await page.Locator("thead th[scope=col]").CountAsync());
        Assert.Equal(3, await page.Locator("tbody th[scope=row]").CountAsync());
        Assert.Equal("polite", await page.Locator("#events").GetAttributeAsync("aria-live"));
        await Assertions.Expect(page.Locator("svg.spark").First).ToBeVisibleAsync(new LocatorAssertionsToBeVisibleOptions { Timeout = 20_000 }); // two latency samples

        // The backend dies: its row turns ejected and the event list says so.
        var port = victim.Port;
        await victim.KillAsync();
        await Assertions.Expect(row).ToHaveClassAsync("ejected", new LocatorAssertionsToHaveClassOptions { Timeout = 20_000 });
        await Assertions.Expect(page.Locator("caption")).ToContainTextAsync("2 of 3 endpoints healthy", s_wait);
        await Assertions.Expect(page.Locator("#events li[data-kind=EndpointEjected]")).ToContainTextAsync(victim.Address, s_wait);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(RepositoryRoot(), "docs", "admin.png"), FullPage = true });

        // It comes back on the same port: the row is healthy again and the list shows the return.
        await using var revived = await TestBackend.StartAsync("b1-again", port: port);
        await Assertions.Expect(row).ToHaveClassAsync("healthy", new LocatorAssertionsToHaveClassOptions { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#events li[data-kind=EndpointReturned]")).ToContainTextAsync(victim.Address, s_wait);
        await Assertions.Expect(page.Locator("caption")).ToContainTextAsync("3 of 3 endpoints healthy", s_wait);

        await load.CancelAsync();
        await traffic;
    }

    [Fact]
    public async Task AdminPage_SectionRegistered_RendersHeadingAndTableWithTextEscaped()
    {
        // Arrange: a section whose text looks like markup, as a control plane could send.
        await using var app = await AdminApp.StartAsync(fakeClock: false, services: s => s.AddSingleton<ILodestarStatusSection>(
            new AdminSectionTests.FakeSection("<i>plane</i>", w =>
            {
                w.WriteStartObject();
                w.WriteString("server", "127.0.0.1:18000");
                w.WriteStartArray("types");
                w.WriteStartObject();
                w.WriteString("type", "Cluster");
                w.WriteStartObject("lastNack");
                w.WriteString("errorDetail", "<img src=x onerror=alert(1)>bad");
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
            })), admin: o => o.PageRefreshInterval = TimeSpan.FromMilliseconds(500));
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath(),
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu"],
        });
        var page = await browser.NewPageAsync();
        var section = page.Locator("#sections section.status-section");

        // Act
        await page.GotoAsync(app.Url + "/lodestar");

        // Assert: the heading and the cells show the text itself; nothing of it became an element.
        await Assertions.Expect(section.Locator("h2")).ToHaveTextAsync("<i>plane</i>", new LocatorAssertionsToHaveTextOptions { Timeout = 20_000 });
        await Assertions.Expect(section.Locator("dl.kv").First).ToContainTextAsync("127.0.0.1:18000", s_wait);
        await Assertions.Expect(section.Locator("table td").First).ToHaveTextAsync("Cluster", new LocatorAssertionsToHaveTextOptions { Timeout = 20_000 });
        await Assertions.Expect(section.Locator("table")).ToContainTextAsync("<img src=x onerror=alert(1)>bad", s_wait);
        Assert.Equal(["type", "lastNack"], await section.Locator("table thead th").AllTextContentsAsync());
        Assert.Equal(0, await section.Locator("i, img").CountAsync());
    }

    /// <summary>Sends one request every 20 ms until cancelled, at most 5,000.</summary>
    private static async Task SendLoadAsync(AdminApp app, CancellationToken cancellationToken)
    {
        for (var i = 0; i < 5_000 && !cancellationToken.IsCancellationRequested; i++)
        {
            try
            {
                using var response = await app.Orders.GetAsync("http://orders/", cancellationToken);
                await Task.Delay(20, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (HttpRequestException)
            {
            }
        }
    }

    private static string ChromiumPath()
    {
        foreach (var candidate in new[] { Environment.GetEnvironmentVariable("LODESTAR_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser" })
        {
            if (!string.IsNullOrEmpty(candidate) && File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("No chromium found: install Debian's chromium (scripts/test.sh does) or set LODESTAR_CHROMIUM to the browser's path.");
    }

    private static string RepositoryRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "Lodestar.slnx")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Lodestar.slnx) is not above " + AppContext.BaseDirectory + ".");
    }
}
