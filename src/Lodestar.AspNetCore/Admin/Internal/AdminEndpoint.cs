using System.Buffers;
using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using Lodestar.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.AspNetCore.Admin.Internal;

/// <summary>Answers the admin API (<c>{prefix}/api</c>) and page (<c>{prefix}</c>) from the process's <see cref="ILodestarInspector"/> and
/// the registered <see cref="ILodestarStatusSection"/>s.</summary>
internal sealed class AdminEndpoint
{
    /// <summary>The page's content security policy: nothing outside the page itself but calls back to this server.</summary>
    private const string PageSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly Lazy<string> s_page = new(LoadPage);

    private readonly ILodestarInspector _inspector;
    private readonly LodestarAdminOptions _options;
    private readonly AdminView _view;
    private readonly string _prefix;

    public AdminEndpoint(ILodestarInspector inspector, LodestarAdminOptions options, string prefix)
    {
        _inspector = inspector;
        _options = options;
        _view = new AdminView(options);
        _prefix = prefix.TrimEnd('/');
    }

    public async Task ApiAsync(HttpContext context)
    {
        if (!await AdmitAsync(context).ConfigureAwait(false))
        {
            return;
        }

        var service = context.Request.Query["service"].ToString();
        var inspection = _view.Apply(_inspector.Inspect(string.IsNullOrEmpty(service) ? null : service));
        var sections = context.RequestServices.GetServices<ILodestarStatusSection>();
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            // The inspection's properties, then every registered section under "sections".
            var element = JsonSerializer.SerializeToElement(inspection, AdminJsonContext.Default.LodestarInspection);
            writer.WriteStartObject();
            foreach (var property in element.EnumerateObject())
            {
                property.WriteTo(writer);
            }

            writer.WritePropertyName("sections");
            AdminSections.Write(writer, sections, text => _view.Clean(text));
            writer.WriteEndObject();
        }

        context.Response.ContentType = "application/json; charset=utf-8";
        SetCommonHeaders(context.Response);
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
    }

    public async Task PageAsync(HttpContext context)
    {
        if (!await AdmitAsync(context).ConfigureAwait(false))
        {
            return;
        }

        var api = context.Request.PathBase.Add(new PathString(_prefix + "/api")).ToUriComponent();
        var refresh = ((long)Math.Clamp(_options.PageRefreshInterval.TotalMilliseconds, 250, 60_000)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var html = s_page.Value
            .Replace("{{API}}", HtmlEncoder.Default.Encode(api), StringComparison.Ordinal)
            .Replace("{{REFRESH}}", refresh, StringComparison.Ordinal);
        context.Response.ContentType = "text/html; charset=utf-8";
        SetCommonHeaders(context.Response);
        context.Response.Headers.ContentSecurityPolicy = PageSecurityPolicy;
        context.Response.Headers["Referrer-Policy"] = "no-referrer";
        await context.Response.WriteAsync(html, context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Gets whether a caller may be answered: a loopback (or in-process) caller, or anyone once opened.</summary>
    internal static bool IsAllowed(ConnectionInfo connection, bool allowRemote)
    {
        if (allowRemote)
        {
            return true;
        }

        // No remote address: an in-process server or a Unix socket, both on this machine.
        var remote = connection.RemoteIpAddress;
        if (remote is null)
        {
            return true;
        }

        if (remote.IsIPv4MappedToIPv6)
        {
            remote = remote.MapToIPv4();
        }

        return IPAddress.IsLoopback(remote);
    }

    private async Task<bool> AdmitAsync(HttpContext context)
    {
        if (IsAllowed(context.Connection, _options.AllowRemoteCallers))
        {
            return true;
        }

        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        context.Response.ContentType = "text/plain; charset=utf-8";
        SetCommonHeaders(context.Response);
        await context.Response.WriteAsync("The Lodestar admin view answers loopback callers only; set Lodestar:Admin:AllowRemoteCallers to open it (and require authorization).",
            context.RequestAborted).ConfigureAwait(false);
        return false;
    }

    private static void SetCommonHeaders(HttpResponse response)
    {
        response.Headers.CacheControl = "no-store";
        response.Headers.XContentTypeOptions = "nosniff";
    }

    private static string LoadPage()
    {
        using var stream = typeof(AdminEndpoint).Assembly.GetManifestResourceStream("Lodestar.AspNetCore.Admin.admin.html")
            ?? throw new InvalidOperationException("The admin page resource is missing from " + typeof(AdminEndpoint).Assembly.GetName().Name + ".");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
