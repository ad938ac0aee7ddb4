using System.Text;
using Lodestar.Cli;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Lodestar.Tests.Cli;

/// <summary>What one in-process run of the CLI printed and returned.</summary>
internal sealed record CliResult(int ExitCode, string Out, string Error)
{
    public string All => Out + Error;

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Out}--- stderr\n{Error}";
}

/// <summary>Runs the <c>lodestar</c> command in-process, with its own console, environment and working folder.</summary>
internal sealed class CliHarness : IDisposable
{
    private readonly Dictionary<string, string?> _environment = new(StringComparer.Ordinal);
    private (TextWriter? Writer, StringWriter? Text) _lastOut;
    private (TextWriter? Writer, StringWriter? Text) _lastError;

    public CliHarness()
    {
        WorkingDirectory = Directory.CreateTempSubdirectory("lodestar-cli-").FullName;
        // A machine's own kubeconfig or registry settings must not leak into the tests.
        _environment["HOME"] = WorkingDirectory;
    }

    public string WorkingDirectory { get; }

    /// <summary>Gets what the run in progress (or the last one) has written to stdout so far.</summary>
    public string LastOut => Read(_lastOut);

    /// <summary>Gets what the run in progress (or the last one) has written to stderr so far.</summary>
    public string LastError => Read(_lastError);

    /// <summary>Gets or sets whether stdout and stderr look like terminals.</summary>
    public bool Terminal { get; set; }

    public CliHarness With(string variable, string? value)
    {
        _environment[variable] = value;
        return this;
    }

    /// <summary>Writes a file in the working folder and returns its full path.</summary>
    public string File(string name, string content)
    {
        var path = Path.Combine(WorkingDirectory, name);
        System.IO.File.WriteAllText(path, content);
        return path;
    }

    public async Task<CliResult> RunAsync(params string[] args) => await RunAsync(CancellationToken.None, args);

    public async Task<CliResult> RunAsync(CancellationToken cancellationToken, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var synchronizedOutput = TextWriter.Synchronized(output);
        var synchronizedError = TextWriter.Synchronized(error);
        _lastOut = (synchronizedOutput, output);
        _lastError = (synchronizedError, error);
        var console = new CliConsole(synchronizedOutput, synchronizedError, Terminal, Terminal,
            name => _environment.GetValueOrDefault(name), WorkingDirectory);
        var code = await Task.Run(() => CliApp.RunAsync(args, console, cancellationToken), CancellationToken.None);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    private static string Read((TextWriter? Writer, StringWriter? Text) captured)
    {
        if (captured.Writer is null)
        {
            return string.Empty;
        }

        // The synchronized writer locks itself around every write.
        lock (captured.Writer)
        {
            return captured.Text!.ToString();
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(WorkingDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Finds the repository root, to run the README's commands against the files it names.</summary>
    public static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (System.IO.File.Exists(Path.Combine(directory.FullName, "Lodestar.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("Lodestar.slnx not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A Kestrel server on 127.0.0.1 that answers every request with a delegate: a registry that is slow, refuses, or echoes.</summary>
internal sealed class ScriptedServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ScriptedServer(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public string Url { get; }

    public static async Task<ScriptedServer> StartAsync(RequestDelegate handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync();
        return new ScriptedServer(app, app.Urls.First());
    }

    public static Task WriteAsync(HttpContext context, int status, string body)
    {
        context.Response.StatusCode = status;
        return context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(body)).AsTask();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
