// A plain express service: kar forwards requests for service "greeter" here.
const express = require('express')

const app = express()
// The SDK sends JSON bodies (a JSON string for helloText).
app.use(express.json({ strict: false }))

app.post('/helloText', (req, res) => res.type('text/plain').send(`Hello ${req.body}`))
app.post('/helloJson', (req, res) => res.json({ greetings: `Hello ${req.body.name}` }))

const port = process.env.KAR_APP_PORT || 8080
app.listen(port, '127.0.0.1', () => console.log(`greeter listening on ${port}`))
